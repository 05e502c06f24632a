/* bus: placeholder until the bus side lands (see bus.h). */
#include "bus.h"

#include "log.h"

int bus_start(struct lws_vhost *vh, const char *protocol)
{
	LOG_F("bus mode is not built yet: use --standalone", NULL);
	return -1;
}

bool bus_owns(struct lws *wsi) { return false; }
int bus_callback(struct lws *wsi, enum lws_callback_reasons reason) { return 0; }
bool bus_failed(void) { return false; }
int bus_send(const char *line, size_t n) { return -1; }
