/* gw: chat-gw's configuration and the declaration of every metric it
 * exports (see gw.h). */
#include "gw.h"

struct gw_config gw_cfg;
unsigned long http_answered; /* (http.h: here with the other globals) */
struct gw_metrics gw_m;

static const double ack_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
				     0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
				     1, 2.5, 5, 10 };

static void reg(struct metric *m, enum metric_kind kind, const char *name,
		const char *help, const char *labels)
{
	m->kind = kind;
	m->name = name;
	m->help = help;
	m->labels = labels;
	metric_register(m);
}

void gw_metrics_init(void)
{
	static const char *const err_labels[E_COUNT] = {
		"code=\"bad_request\"", "code=\"unauthorized\"", "code=\"forbidden\"",
		"code=\"not_joined\"", "code=\"too_large\"", "code=\"rate_limited\"",
		"code=\"unavailable\"", "code=\"internal\"",
	};
	int i;

	reg(&gw_m.conns, METRIC_GAUGE, "chat_gw_connections", "Open WebSocket connections.", NULL);
	reg(&gw_m.accepted, METRIC_COUNTER, "chat_gw_connections_total", "WebSocket connections accepted.", NULL);
	reg(&gw_m.refused_auth, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"auth\"");
	reg(&gw_m.refused_full, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"unavailable\"");
	reg(&gw_m.refused_timeout, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"timeout\"");
	reg(&gw_m.refused_header, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"header_too_large\"");
	reg(&gw_m.refused_method, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"method\"");
	reg(&gw_m.refused_target, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"target\"");
	reg(&gw_m.refused_per_ip, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"per_ip\"");
	reg(&gw_m.refused_origin, METRIC_COUNTER, "chat_gw_refused_total", "Handshakes refused.", "reason=\"origin\"");
	reg(&gw_m.frames_in, METRIC_COUNTER, "chat_gw_frames_in_total", "Client frames received.", NULL);
	reg(&gw_m.frames_out, METRIC_COUNTER, "chat_gw_frames_out_total", "Frames sent to clients.", NULL);
	reg(&gw_m.writes, METRIC_COUNTER, "chat_gw_writes_total", "Socket writes to clients (frames coalesce).", NULL);
	reg(&gw_m.early_writes, METRIC_COUNTER, "chat_gw_full_queue_writes_total", "Queues written at once because they were full (a burst answered within one loop turn), before any slow-consumer cut.", NULL);
	reg(&gw_m.deliveries, METRIC_COUNTER, "chat_gw_deliveries_total", "Messages queued to room members.", NULL);
	reg(&gw_m.messages, METRIC_COUNTER, "chat_gw_messages_total", "Messages fanned out.", NULL);
	for (i = 0; i < E_COUNT; i++)
		reg(&gw_m.errors[i], METRIC_COUNTER, "chat_gw_errors_total", "Error frames sent, by code.", err_labels[i]);
	reg(&gw_m.slow, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"slow_consumer\"");
	reg(&gw_m.too_big, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"too_big\"");
	reg(&gw_m.binary, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"binary\"");
	reg(&gw_m.internal_closes, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"internal\"");
	reg(&gw_m.expired, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"token_expired\"");
	reg(&gw_m.client_closes, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"client\"");
	reg(&gw_m.shutdown_closes, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"shutdown\"");
	reg(&gw_m.dropped, METRIC_COUNTER, "chat_gw_closes_total", "Connections closed, by reason.", "reason=\"dropped\"");
	reg(&gw_m.dedupe_hits, METRIC_COUNTER, "chat_gw_dedupe_hits_total", "Publishes answered with the first ack of their ref.", NULL);
	reg(&gw_m.accept_paused, METRIC_COUNTER, "chat_gw_accept_failures_total", "Connections not taken because the process was out of descriptors.", NULL);
	reg(&gw_m.rooms, METRIC_GAUGE, "chat_gw_rooms", "Rooms in memory.", NULL);
	reg(&gw_m.rooms_evicted, METRIC_COUNTER, "chat_gw_rooms_evicted_total", "Rooms without members forgotten at --max-rooms, with their history.", NULL);
	gw_m.ack_latency.bounds = ack_bounds;
	gw_m.ack_latency.nbounds = (int)(sizeof(ack_bounds) / sizeof(ack_bounds[0]));
	reg(&gw_m.ack_latency, METRIC_HISTOGRAM, "chat_gw_publish_ack_seconds", "Time from a publish to its ack.", NULL);
	gw_m.loop_busy.bounds = ack_bounds;
	gw_m.loop_busy.nbounds = gw_m.ack_latency.nbounds;
	reg(&gw_m.loop_busy, METRIC_HISTOGRAM, "chat_gw_loop_turn_seconds", "The work of one event loop turn (what a client may wait behind).", NULL);
	gw_m.loop_cpu.bounds = ack_bounds;
	gw_m.loop_cpu.nbounds = gw_m.ack_latency.nbounds;
	reg(&gw_m.loop_cpu, METRIC_HISTOGRAM, "chat_gw_loop_turn_cpu_seconds", "The CPU time of one event loop turn.", NULL);
	reg(&gw_m.bus_in, METRIC_COUNTER, "chat_gw_bus_lines_in_total", "Bus lines read from the relay.", NULL);
	reg(&gw_m.bus_out, METRIC_COUNTER, "chat_gw_bus_lines_out_total", "Bus lines written to the relay.", NULL);
	reg(&gw_m.bus_bad, METRIC_COUNTER, "chat_gw_bus_lines_bad_total", "Bus lines refused as malformed or too long.", NULL);
	reg(&gw_m.bus_full, METRIC_COUNTER, "chat_gw_bus_full_total", "Requests refused because the bus backlog was full.", NULL);
	reg(&gw_m.bus_timeouts, METRIC_COUNTER, "chat_gw_bus_timeouts_total", "Publishes and queries not answered within --bus-timeout.", NULL);
	reg(&gw_m.bus_nacks, METRIC_COUNTER, "chat_gw_bus_nacks_total", "Publishes the broker refused.", NULL);
	reg(&gw_m.bus_dups, METRIC_COUNTER, "chat_gw_bus_duplicates_total", "Sequenced messages delivered by the bus twice, dropped.", NULL);
	reg(&gw_m.room_recoveries, METRIC_COUNTER, "chat_gw_room_recoveries_total", "Rooms caught up from the sequencer after a gap or a reconnect.", NULL);
	reg(&gw_m.room_recovery_failures, METRIC_COUNTER, "chat_gw_room_recovery_failures_total", "Room recoveries given up: no answer (or an error) to three recover queries, or none could be sent.", NULL);
	reg(&gw_m.room_hold_full, METRIC_COUNTER, "chat_gw_room_hold_full_total", "Room recoveries given up because the room held --room-hold live messages.", NULL);
	reg(&gw_m.bus_stale, METRIC_COUNTER, "chat_gw_bus_stale_answers_total", "Answers dropped because their room is not the question's.", NULL);
	reg(&gw_m.presence_quiet, METRIC_COUNTER, "chat_gw_presence_quiet_total", "Presence changes not pushed to a room's members: more than --presence-max-members.", NULL);
	reg(&gw_m.presence_beats, METRIC_COUNTER, "chat_gw_presence_heartbeats_total", "Heartbeat rounds sent to chat-presence.", NULL);
	reg(&gw_m.presence_lost, METRIC_COUNTER, "chat_gw_presence_lines_lost_total", "Presence lines (join, leave, heartbeat) the bus did not take.", NULL);
	reg(&gw_m.pending, METRIC_GAUGE, "chat_gw_bus_pending", "Publishes and queries waiting for the bus.", NULL);
}
