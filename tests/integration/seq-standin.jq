# A sequencing stand-in for the bus tests, until chat-archive exists: it
# takes what the gateways publish to the ingest queue, gives each message
# its room seq, and publishes it to msg.ROOM; it keeps every message in
# memory and answers recover and history queries to node.NODE. Run as the
# child of a chat-relay consuming chat.ingest and bound to rpc.#.
def message($m; $s): $m | del(.confirm, .node, .route, .tag) | .type = "message" | .seq = $s;
foreach inputs as $m ({seq: {}, log: {}, out: null};
  if $m.type == "publish" then
    ((.seq[$m.room] // 0) + 1) as $s
    | .seq[$m.room] = $s
    | .out = (message($m; $s) | .route = "msg." + $m.room)
    | .log[$m.room] = ((.log[$m.room] // []) + [message($m; $s)])
  elif $m.type == "recover" then
    .out = {type: "recovered", rpc: $m.rpc, room: $m.room, seq: (.seq[$m.room] // 0),
            messages: (if $m.since == null then []
                       else [(.log[$m.room] // [])[] | select(.seq > $m.since)] end),
            route: ("node." + $m.node)}
  elif $m.type == "history" then
    ([(.log[$m.room] // [])[] | select(.seq < ($m.before // 1e18))]) as $older
    | .out = {type: "history", rpc: $m.rpc, room: $m.room,
              messages: $older[-($m.limit):], more: (($older | length) > $m.limit),
              route: ("node." + $m.node)}
  else .out = null end;
  .out | select(. != null))
