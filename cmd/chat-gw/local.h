/* local: standalone mode's operations for the hub (local.c). */
#ifndef CHAT_GW_LOCAL_H
#define CHAT_GW_LOCAL_H

#include "hub.h"

extern const struct hub_ops local_ops;

#endif
