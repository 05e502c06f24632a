/* pmetrics: the declaration of every metric chat-presence exports (see
 * presence.h and the METRICS section of man/chat-presence.1). */
#include "presence.h"

struct pres_metrics pm;

static void reg(struct metric *m, enum metric_kind kind, const char *name,
		const char *help)
{
	m->kind = kind;
	m->name = name;
	m->help = help;
	metric_register(m);
}

void pres_metrics_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	/* clang-format off */
	reg(&pm.lines, METRIC_COUNTER, "chat_presence_lines_total", "Input lines read, of every kind.");
	reg(&pm.bad_lines, METRIC_COUNTER, "chat_presence_bad_lines_total", "Input lines refused: not JSON, unknown type, bad node or room.");
	reg(&pm.bad_names, METRIC_COUNTER, "chat_presence_bad_names_total", "User or room names skipped inside otherwise good lines.");
	reg(&pm.overlong, METRIC_COUNTER, "chat_presence_overlong_lines_total", "Input lines longer than --max-line, dropped.");
	reg(&pm.joins, METRIC_COUNTER, "chat_presence_joins_total", "Users named by join lines.");
	reg(&pm.leaves, METRIC_COUNTER, "chat_presence_leaves_total", "Users named by leave lines.");
	reg(&pm.heartbeats, METRIC_COUNTER, "chat_presence_heartbeats_total", "Heartbeat lines applied.");
	reg(&pm.refreshed, METRIC_COUNTER, "chat_presence_entries_refreshed_total", "Entries named by heartbeat lines.");
	reg(&pm.downs, METRIC_COUNTER, "chat_presence_downs_total", "Down lines applied.");
	reg(&pm.queries, METRIC_COUNTER, "chat_presence_queries_total", "Presence queries read.");
	reg(&pm.query_errors, METRIC_COUNTER, "chat_presence_query_errors_total", "Presence queries answered with an error.");
	reg(&pm.joined, METRIC_COUNTER, "chat_presence_joined_total", "Users that became present in a room (announced by this process).");
	reg(&pm.left, METRIC_COUNTER, "chat_presence_left_total", "Users that became absent from a room (announced by this process).");
	reg(&pm.expired, METRIC_COUNTER, "chat_presence_expired_total", "Users made absent by an expiry sweep or a down line.");
	reg(&pm.cancelled, METRIC_COUNTER, "chat_presence_cancelled_total", "Join and leave pairs that cancelled inside one window.");
	reg(&pm.events, METRIC_COUNTER, "chat_presence_events_total", "Presence change lines published.");
	reg(&pm.sweeps, METRIC_COUNTER, "chat_presence_sweeps_total", "Expiry sweeps completed.");
	reg(&pm.reconnects, METRIC_COUNTER, "chat_presence_redis_reconnects_total", "Reconnects to Redis after it went away.");
	reg(&pm.gaps, METRIC_COUNTER, "chat_presence_redis_gaps_total", "Times Redis went away.");
	reg(&pm.gap_ms, METRIC_COUNTER, "chat_presence_redis_gap_milliseconds_total", "Time Redis was away, summed.");
	reg(&pm.state_lost, METRIC_COUNTER, "chat_presence_redis_state_lost_total", "Reconnects to a Redis that had lost the presence state.");
	reg(&pm.lost_ops, METRIC_COUNTER, "chat_presence_redis_lost_replies_total", "Commands whose reply was lost with the connection.");
	reg(&pm.redis_errors, METRIC_COUNTER, "chat_presence_redis_errors_total", "Error replies from Redis.");
	reg(&pm.backlog, METRIC_GAUGE, "chat_presence_backlog_lines", "Lines held while Redis is away.");
	reg(&pm.dropped, METRIC_COUNTER, "chat_presence_dropped_lines_total", "Lines dropped while Redis was away: --backlog full.");
	reg(&pm.pending, METRIC_GAUGE, "chat_presence_redis_pending", "Commands sent to Redis and not answered yet.");
	reg(&pm.paused, METRIC_COUNTER, "chat_presence_input_paused_total", "Times input reading paused: output or Redis pipeline full.");
	reg(&pm.out_dropped, METRIC_COUNTER, "chat_presence_output_dropped_total", "Output lines dropped: the output buffer was full.");
	/* clang-format on */
}
