// chat-gw's browser client (GET /, cmd/chat-gw/page.html) in a real headless
// Chromium against one standalone gateway, each user in their own browser
// context: the first join's history with sender and time, text and JSON
// bodies, sending with Enter, own messages, escaping, presence, typing and
// its expiry, several rooms with unread counts, scrolling back through
// history by seq, resuming every room with "since" after a drop, a gap older
// than the gateway's ring, a publish held until a reconnect and retried with
// its ref, and a seq gap in the live stream filled from history. Every wait
// polls a condition, bounded.
//
// env: GW_HTTP    the gateway, http://HOST:PORT, run with --history 200
//                 (required)
//      ROOM       the first room (lobby)
//      SEED       the text of a message {"text":SEED} already in ROOM before
//                 the pages open, then SEED_JSON (the bats file sends both
//                 with chat-cli); checked if set
//      SEED_JSON  a body that is not text, sent second
//      SEED_FROM  who sent them (carol)
//      LONG       a room holding LONG_N messages {"text":"old N"} (long)
//      LONG_N     (120; 0: no such room, the test is skipped)
//      CHROMIUM   the browser (/usr/bin/chromium)
//
// run: GW_HTTP=http://127.0.0.1:8080 node --test tests/browser/chat.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
	WAIT, BACKOFF_CAP, launch, eventually, open, sent, live, messages, texts, seqs,
	outbox, presence, current, states, say, roomList, switchTo, range,
} from './lib.mjs';

const GW = process.env.GW_HTTP;
const ROOM = process.env.ROOM || 'lobby';
const SEED = process.env.SEED || '';
const SEED_JSON = process.env.SEED_JSON || '';
const SEED_FROM = process.env.SEED_FROM || 'carol';
const LONG = process.env.LONG || 'long';
const LONG_N = Number(process.env.LONG_N ?? 120);
const RING = 200; // the gateway's --history

if (!GW) {
	console.error('chat.test.mjs: set GW_HTTP to the gateway, e.g. http://127.0.0.1:8080');
	process.exit(64);
}

let browser;
const users = {}; // name -> what open() returns

describe('chat page, standalone gateway', () => {
	before(async () => {
		browser = await launch();
	});

	after(async () => {
		await browser?.close();
	});

	it('alice and bob connect: "live", and their name shown', async () => {
		for (const name of ['alice', 'bob']) {
			users[name] = await open(browser, GW, name, [ROOM]);
			await live(users[name].page);
			assert.equal(await users[name].page.locator('#me').textContent(), name);
			assert.equal(await current(users[name].page), ROOM);
		}
	});

	it('the first join shows what was said before, with sender and time', { skip: !SEED && 'SEED not set' }, async () => {
		for (const name of ['alice', 'bob']) {
			const u = users[name];
			await eventually(async () => assert.deepEqual(await texts(u.page, ROOM), [SEED, SEED_JSON]));
			const [m, j] = await messages(u.page, ROOM);
			assert.equal(m.from, SEED_FROM);
			assert.equal(m.json, false, 'a text body is shown as text');
			assert.match(m.time, /^\d\d:\d\d$/, 'local HH:MM');
			assert.match(m.title, new RegExp(String(new Date().getFullYear())), 'the full date on hover');
			assert.equal(m.mine, false);
			assert.equal(j.json, true, 'another body is shown as compact JSON');
			assert.equal(j.text, JSON.stringify(JSON.parse(SEED_JSON)));
			const joins = sent(u, 'join');
			assert.equal(joins.length, 1);
			assert.equal(joins[0].since, undefined, 'a first join has no since');
		}
	});

	it('the presence list on each page shows both users', async () => {
		for (const name of ['alice', 'bob'])
			await eventually(async () => assert.deepEqual(await presence(users[name].page), ['alice', 'bob']));
	});

	it('bob sees "alice is typing" while she types; it expires, and her message ends it', async () => {
		const { page: alice } = users.alice, { page: bob } = users.bob;
		await alice.locator('#text').pressSequentially('hello b');
		await bob.locator('#typing', { hasText: /^alice is typing…$/ }).waitFor({ timeout: WAIT });
		assert.equal(await alice.locator('#typing').textContent(), '', 'no notice of our own typing');
		const typed = sent(users.alice, 'typing').length;
		assert.ok(typed >= 1 && typed <= 2, `typing notices are throttled (${typed} for 7 keys)`);
		// She stops: the notice goes by itself.
		await eventually(async () => assert.equal(await bob.locator('#typing').textContent(), ''), 8000);
		await alice.locator('#text').pressSequentially('ob');
		await bob.locator('#typing', { hasText: /^alice is typing/ }).waitFor({ timeout: WAIT });
		await alice.locator('#text').press('Enter');
		await eventually(async () => assert.ok((await texts(bob, ROOM)).includes('hello bob')));
		assert.equal(await bob.locator('#typing').textContent(), '', 'her message ends her typing');
	});

	it('a message sent with Enter: once on each page, hers marked as hers, acked with its ref', async () => {
		const a = users.alice, { page: alice } = a, { page: bob } = users.bob;
		assert.equal(await alice.locator('#text').inputValue(), '', 'the input is cleared');
		await eventually(async () => assert.deepEqual(await outbox(alice, ROOM), [], 'acked and delivered: the outbox is empty'));
		for (const [page, mine] of [[alice, true], [bob, false]]) {
			const m = (await messages(page, ROOM)).filter((x) => x.text === 'hello bob');
			assert.equal(m.length, 1);
			assert.equal(m[0].from, 'alice');
			assert.equal(m[0].mine, mine);
		}
		const p = sent(a, 'publish');
		assert.equal(p.length, 1);
		assert.deepEqual(p[0].body, { text: 'hello bob' }, 'a text body is {"text":...}');
		assert.equal(typeof p[0].ref, 'string');
	});

	it('text from users is shown as text, never as markup', async () => {
		const evil = '<img src=x onerror="window.pwned=1"><b>bold</b> & <script>window.pwned=2</script>';
		await say(users.alice.page, evil);
		for (const name of ['alice', 'bob']) {
			const page = users[name].page;
			await eventually(async () => assert.ok((await texts(page, ROOM)).includes(evil)));
			assert.equal(await page.locator('.log img, .log b, .log script').count(), 0);
			assert.equal(await page.evaluate(() => window.pwned), undefined);
		}
	});

	it('rooms: alice adds one; unread counts there while she is elsewhere; switching clears them', async () => {
		const { page: alice } = users.alice, { page: bob } = users.bob;
		await alice.locator('#newroom').fill('side');
		await alice.locator('#newroom').press('Enter');
		await eventually(async () => assert.equal(await current(alice), 'side'));
		await eventually(async () => assert.ok(sent(users.alice, 'join').some((j) => j.room === 'side')));
		await switchTo(alice, ROOM);
		assert.equal(await current(alice), ROOM);

		await bob.locator('#newroom').fill('side');
		await bob.locator('#newroom').press('Enter');
		await live(bob);
		await eventually(async () => assert.ok(sent(users.bob, 'join').some((j) => j.room === 'side')));
		await eventually(async () => assert.deepEqual(await presence(bob), ['alice', 'bob']));
		await say(bob, 'side one');
		await say(bob, 'side two');
		await eventually(async () => assert.deepEqual(await roomList(alice), [
			{ name: ROOM, unread: 0, current: true },
			{ name: 'side', unread: 2, current: false },
		]));
		assert.match(await alice.title(), /^\(2\) /, 'the title counts unread messages');
		assert.ok(await alice.locator(`.view[data-room="${ROOM}"]`).isVisible());
		assert.ok(await alice.locator('.view[data-room="side"]').isHidden());

		await switchTo(alice, 'side');
		assert.deepEqual(await texts(alice, 'side'), ['side one', 'side two']);
		assert.deepEqual((await roomList(alice)).map((r) => r.unread), [0, 0]);
		assert.ok(await alice.locator('.view[data-room="side"]').isVisible());
		assert.match(alice.url(), /room=lobby&room=side#side$/, 'the URL keeps the rooms');
		await switchTo(alice, ROOM);
		await switchTo(bob, ROOM);
	});

	it('scroll back: older pages of history by seq, until the beginning', { skip: !LONG_N && 'LONG_N is 0' }, async () => {
		const a = users.alice, { page: alice } = a;
		await alice.locator('#newroom').fill(LONG);
		await alice.locator('#newroom').press('Enter');
		await eventually(async () => assert.deepEqual(await seqs(alice, LONG), range(LONG_N - 49, LONG_N)));
		await alice.locator('.view:not([hidden]) .top button', { hasText: 'load older' }).waitFor({ timeout: WAIT });
		const view = alice.locator(`.view[data-room="${LONG}"]`);
		for (let page = 1; (await seqs(alice, LONG))[0] > 1; page++) {
			assert.ok(page <= 3, 'three pages at most');
			const first = (await seqs(alice, LONG))[0];
			await view.evaluate((v) => { v.scrollTop = 0; });
			await eventually(async () => assert.ok((await seqs(alice, LONG))[0] < first));
			const asked = sent(a, 'history').filter((h) => h.room === LONG && h.before !== undefined);
			assert.equal(asked.at(-1).before, first, 'history before the first seq on screen');
			// What was read stays in view: the page is not at the top any more.
			assert.ok(await view.evaluate((v) => v.scrollTop > 0));
		}
		assert.deepEqual(await seqs(alice, LONG), range(1, LONG_N));
		assert.deepEqual((await texts(alice, LONG)).slice(0, 2), ['old 1', 'old 2']);
		await alice.locator('.view:not([hidden]) .top', { hasText: `the beginning of #${LONG}` }).waitFor({ timeout: WAIT });
		await switchTo(alice, ROOM);
	});

	it('a crowded room: the first 50 users listed, the rest counted, kept up by the changes', async () => {
		const { page: alice } = users.alice;
		// 52 bare connections in "crowd", opened from bob's page.
		await users.bob.page.evaluate(() => Promise.all(Array.from({ length: 52 }, (_, i) => new Promise((res, rej) => {
			const ws = new WebSocket(`ws://${location.host}/ws?user=u${String(i).padStart(2, '0')}`, 'chat.v1');
			(window.crowd ||= []).push(ws);
			ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room: 'crowd' }));
			ws.onmessage = (ev) => { if (JSON.parse(ev.data).type === 'joined') res(); };
			ws.onerror = rej;
		}))));
		await alice.locator('#newroom').fill('crowd');
		await alice.locator('#newroom').press('Enter');
		await eventually(async () => assert.equal(await alice.locator('#count').textContent(), '· 53'));
		assert.equal((await presence(alice)).length, 50);
		assert.equal(await alice.locator('#who-more').textContent(), 'and 3 more');
		assert.ok((await presence(alice)).includes('alice'));
		await users.bob.page.evaluate(() => { window.crowd.pop().close(); window.crowd.pop().close(); });
		await eventually(async () => assert.equal(await alice.locator('#count').textContent(), '· 51'));
		await users.bob.page.evaluate(() => { for (const ws of window.crowd) ws.close(); });
		await eventually(async () => assert.deepEqual(await presence(alice), ['alice']));
		assert.equal(await alice.locator('#count').textContent(), '· 1');
		assert.equal(await alice.locator('#who-more').textContent(), '');
		await alice.locator('#rooms li', { hasText: 'crowd' }).locator('.leave').click({ force: true });
		assert.ok(!(await roomList(alice)).some((r) => r.name === 'crowd'));
		await eventually(async () => assert.ok(sent(users.alice, 'leave').some((l) => l.room === 'crowd')));
		assert.equal(await current(alice), ROOM);
	});

	it('after a drop alice reconnects by herself and resumes every room with since: what she missed, once, in order', async () => {
		const a = users.alice, b = users.bob, { page: alice } = a, { page: bob } = b;
		// alice is in ring too, so that bob overruns the gateway's ring there.
		await alice.locator('#newroom').fill('ring');
		await alice.locator('#newroom').press('Enter');
		await switchTo(alice, ROOM);
		await bob.locator('#newroom').fill('ring');
		await bob.locator('#newroom').press('Enter');
		await switchTo(bob, ROOM);
		// Her join answered, not just sent: only a room joined once is
		// resumed with since (a drop before the answer rejoins it plainly).
		await alice.locator('.view[data-room="ring"] .log li.note', { hasText: /^joined #ring$/ })
			.waitFor({ state: 'attached', timeout: WAIT });
		await eventually(async () => assert.ok(sent(b, 'join').some((j) => j.room === 'ring')));

		const before = await messages(alice, ROOM);
		const lastSeq = Math.max(...before.map((m) => m.seq));
		const joins = sent(a, 'join').length;
		// Offline first, so that the page cannot come back before bob has spoken.
		await a.ctx.setOffline(true);
		await alice.evaluate(() => window.chat.conn.ws.close());
		await alice.locator('#conn[data-state=reconnecting]', { hasText: /^reconnecting in \d+s$/ }).waitFor({ timeout: WAIT });
		await eventually(async () => assert.deepEqual(await presence(bob), ['bob'])); // the gateway saw her go
		const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
		for (const t of missed) await say(bob, t);
		// In ring, more than the gateway holds.
		const n = RING + 30;
		await bob.evaluate((n) => {
			for (let i = 1; i <= n; i++)
				window.chat.conn.ws.send(JSON.stringify({ type: 'publish', room: 'ring', body: { text: 'r' + i }, ref: 'raw' + i }));
		}, n);
		await eventually(async () => assert.deepEqual((await texts(bob, ROOM)).slice(-3), missed));
		await eventually(async () => assert.equal((await seqs(bob, 'ring')).length, n));

		await a.ctx.setOffline(false);
		// Back online the page tries at once, unless a try was on its way
		// out then: that one fails, and the next comes after the backoff,
		// up to the page's cap.
		await live(alice, BACKOFF_CAP + WAIT);
		await eventually(async () => assert.deepEqual(await texts(alice, ROOM), [...before.map((m) => m.text), ...missed]));
		const rejoin = sent(a, 'join').slice(joins);
		assert.equal(rejoin.find((j) => j.room === ROOM)?.since, lastSeq, 'the join resumes with since = the last seq seen');
		assert.equal(rejoin.find((j) => j.room === 'ring')?.since, 0);
		assert.deepEqual(rejoin.filter((j) => j.since === undefined), [], 'every room resumes');
		const st = await states(alice);
		assert.deepEqual(st.slice(-3), ['reconnecting', 'connecting', 'live']);

		// ring: the first 30 are gone from the gateway; the page says so once,
		// in place, and shows the 200 it holds; they are unread.
		await eventually(async () => assert.deepEqual(await seqs(alice, 'ring'), range(31, n)));
		const gap = alice.locator('.view[data-room="ring"] .log li.gap');
		assert.equal(await gap.count(), 1);
		assert.match(await gap.textContent(), /^messages 1–30 are no longer held/);
		assert.equal((await roomList(alice)).find((r) => r.name === 'ring').unread, RING);
		await eventually(async () => assert.deepEqual(await presence(bob), ['alice', 'bob']));
		await eventually(async () => assert.deepEqual(await presence(alice), ['alice', 'bob']));
	});

	it('each page shows every message of the room exactly once, in seq order', async () => {
		const want = await texts(users.bob.page, ROOM);
		assert.ok(want.includes('while you were away 3'));
		for (const name of ['alice', 'bob']) {
			const s = await seqs(users[name].page, ROOM);
			assert.deepEqual(await texts(users[name].page, ROOM), want, name);
			assert.deepEqual(s, range(1, s.length), `${name}: seqs 1..n, once each`);
		}
	});

	it('alice\'s presence list drops bob when his page closes', async () => {
		await users.bob.page.close();
		await eventually(async () => assert.deepEqual(await presence(users.alice.page), ['alice']));
	});

	it('dave behind a lossy proxy: a publish with no ack stays pending and goes again, with its ref, after a reconnect', async () => {
		// dave's page sees the gateway through a proxy that never forwards
		// his first publish, and loses one message on its way to him.
		const dave = await open(browser, GW, 'dave', [ROOM], {
			setup: (page, u) => {
				u.held = 0;
				u.dropped = 0;
				u.routed = []; // what the page sent, as the proxy saw it
				return page.routeWebSocket(/\/ws\?/, (ws) => {
					const server = ws.connectToServer();
					ws.onMessage((m) => {
						const f = JSON.parse(m);
						u.routed.push(f);
						if (f.type === 'publish' && f.body?.text === 'held' && !u.held++) return;
						server.send(m);
					});
					server.onMessage((m) => {
						const f = JSON.parse(m);
						if (f.type === 'message' && f.body?.text === 'lost on the way') u.dropped++;
						else ws.send(m);
					});
				});
			},
		});
		users.dave = dave;
		const { page } = dave, alice = users.alice.page;
		await live(page);
		const earlier = await texts(alice, ROOM);
		await eventually(async () => assert.deepEqual(await texts(page, ROOM), earlier));

		await say(page, 'held');
		await say(alice, 'fence');
		await eventually(async () => assert.equal((await texts(page, ROOM)).at(-1), 'fence'));
		const ob = await outbox(page, ROOM);
		assert.deepEqual(ob.map((x) => [x.cls, x.state, x.text]), [['pending', 'sending…', 'held']],
			'no ack: still pending');
		assert.ok(!(await texts(alice, ROOM)).includes('held'));

		await page.evaluate(() => window.chat.conn.ws.close());
		await eventually(async () => assert.ok((await texts(page, ROOM)).includes('held')));
		await eventually(async () => assert.deepEqual(await outbox(page, ROOM), []));
		const p = dave.routed.filter((f) => f.type === 'publish' && f.body.text === 'held');
		assert.equal(p.length, 2, 'sent twice');
		assert.equal(p[1].ref, p[0].ref, 'with the same ref');
		for (const pg of [page, alice])
			await eventually(async () => assert.equal((await texts(pg, ROOM)).filter((t) => t === 'held').length, 1));
	});

	it('a seq gap in the live stream is filled from history, in place', async () => {
		const dave = users.dave, { page } = dave, alice = users.alice.page;
		await live(page);
		await eventually(async () => assert.deepEqual(await presence(alice), ['alice', 'dave']));
		const earlier = await texts(page, ROOM);
		await say(alice, 'lost on the way');
		await say(alice, 'after the loss');
		await eventually(async () => assert.deepEqual((await texts(alice, ROOM)).slice(-2), ['lost on the way', 'after the loss']));
		await eventually(async () => assert.deepEqual(await texts(page, ROOM), [...earlier, 'lost on the way', 'after the loss']));
		assert.equal(dave.dropped, 1, 'the proxy dropped the live copy');
		const last = (await messages(alice, ROOM)).at(-1).seq;
		assert.ok(dave.routed.some((h) => h.type === 'history' && h.before === last && h.limit === 1),
			'the page asked for the one missing message');
	});

	it('no page threw an error', () => {
		for (const [name, u] of Object.entries(users)) assert.deepEqual(u.errors, [], name);
	});
});
