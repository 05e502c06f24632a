// chat-gw's browser client against the full system (tests/integration/
// browser-bus.bats starts it): two gateways on the bus, each behind its
// chat-relay, and the archive that gives seqs and answers history.
//
// alice's page is served by "the front", one address for both gateways
// that hands each new connection to the first that answers (gw1 while it
// lives): what a shared --reuseport port or a load balancer does, but
// deterministic, so that the test knows which gateway to kill under her.
// bob's page is on gw2. They chat in one room; bob reloads and sees the
// history; gw1 is killed (SIGKILL, relay and gateway) under alice while bob
// talks: her page says it is reconnecting, comes back through the front on
// gw2 and shows every seq of the archive once, none missing or doubled.
//
// env: GW1_HTTP, GW2_HTTP  the gateways, http://HOST:PORT (required)
//      GW1_PIDS            gw1's relay and gateway, killed by the test
//      PRESENCE            1 when chat-presence answers presence queries
//      PART                which tests run: chat (default), presence (needs
//                          chat-presence) or nopresence (needs its absence)
//      CHROMIUM            the browser (/usr/bin/chromium)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
	WAIT, BACKOFF_CAP, launch, eventually, open, sent, live, messages, texts, seqs,
	outbox, presence, states, say, range,
} from './lib.mjs';

const GW1 = process.env.GW1_HTTP, GW2 = process.env.GW2_HTTP;
const PRESENCE = process.env.PRESENCE === '1';
const PART = process.env.PART || 'chat';
const ROOM = 'bus';

if (!GW1 || !GW2) {
	console.error('bus.test.mjs: set GW1_HTTP and GW2_HTTP to the gateways');
	process.exit(64);
}

// front(urls): a TCP listener on loopback that pipes each connection to the
// first of urls that accepts one; while held it drops new connections, as
// if nobody answered. Returns {url, hold(bool), close}.
async function front(urls) {
	const backs = urls.map((u) => new URL(u));
	const socks = new Set();
	let held = false;
	const server = net.createServer((c) => {
		if (held) return c.destroy();
		socks.add(c);
		c.on('close', () => socks.delete(c));
		c.on('error', () => {});
		c.pause();
		const to = (i) => {
			if (i >= backs.length || c.destroyed) return c.destroy();
			const u = net.connect(Number(backs[i].port), backs[i].hostname);
			u.once('error', () => to(i + 1));
			u.once('connect', () => {
				u.removeAllListeners('error');
				u.on('error', () => c.destroy());
				u.on('close', () => c.destroy());
				c.on('close', () => u.destroy());
				socks.add(u);
				u.on('close', () => socks.delete(u));
				c.pipe(u);
				u.pipe(c);
				c.resume();
			});
		};
		to(0);
	});
	await new Promise((res) => server.listen(0, '127.0.0.1', res));
	return {
		url: `http://127.0.0.1:${server.address().port}`,
		hold: (on) => { held = on; },
		close: () => { for (const s of socks) s.destroy(); server.close(); },
	};
}

// The room's history as the archive holds it, asked through gw2 from a
// page (a bare WebSocket, paging with before until more is false). An
// unavailable answer (no answer from the archive within the gateways'
// --bus-timeout of 2 s, which a loaded machine can pass) is asked again
// after a pause, as chat-protocol(7) tells clients to, at most 5 times.
function archive(page, room) {
	return page.evaluate((room) => new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://${location.host}/ws?user=auditor`, 'chat.v1');
		const all = [];
		let before, retries = 0;
		const ask = () => ws.send(JSON.stringify({ type: 'history', room, limit: 200, before, ref: 'a' }));
		ws.onopen = ask;
		ws.onerror = () => reject(new Error('auditor: no connection'));
		ws.onmessage = (ev) => {
			const m = JSON.parse(ev.data);
			if (m.type === 'error' && m.code === 'unavailable' && retries < 5) {
				retries++;
				setTimeout(ask, 500);
				return;
			}
			if (m.type === 'error') { ws.close(); reject(new Error('auditor: ' + ev.data)); return; }
			if (m.type !== 'history') return;
			all.unshift(...m.messages.map((x) => ({ seq: x.seq, id: x.id, body: x.body })));
			if (m.more) { before = m.messages[0].seq; ask(); }
			else { ws.close(); resolve(all); }
		};
	}), room);
}

let browser, fr;
const users = {};

describe('chat page, two gateways on the bus with the archive', () => {
	before(async () => {
		browser = await launch();
		fr = await front([GW1, GW2]);
	});

	after(async () => {
		await browser?.close();
		fr?.close();
	});

	it('alice (through the front, on gw1) and bob (on gw2) chat in one room', { skip: PART !== 'chat' }, async () => {
		users.alice = await open(browser, fr.url, 'alice', [ROOM]);
		await live(users.alice.page);
		users.bob = await open(browser, GW2, 'bob', [ROOM]);
		await live(users.bob.page);
		const { page: alice } = users.alice, { page: bob } = users.bob;
		await say(alice, 'hello from alice');
		await eventually(async () => assert.deepEqual(await texts(bob, ROOM), ['hello from alice']));
		await say(bob, 'hello from bob');
		for (const page of [alice, bob]) {
			await eventually(async () => assert.deepEqual(await texts(page, ROOM), ['hello from alice', 'hello from bob']));
			assert.deepEqual(await seqs(page, ROOM), [1, 2]);
			await eventually(async () => assert.deepEqual(await outbox(page, ROOM), []));
		}
		const [a, b] = await messages(bob, ROOM);
		assert.match(a.id, /^gw1-/, 'alice published on gw1');
		assert.match(b.id, /^gw2-/, 'bob published on gw2');
		assert.deepEqual((await messages(alice, ROOM)).map((m) => m.mine), [true, false]);
	});

	it('presence lists both (when chat-presence runs)', { skip: PART !== 'chat' || (!PRESENCE && 'no chat-presence') }, async () => {
		for (const name of ['alice', 'bob'])
			await eventually(async () => assert.deepEqual(await presence(users[name].page), ['alice', 'bob']));
	});

	it('bob reloads and sees the history, once', { skip: PART !== 'chat' }, async () => {
		const b = users.bob, { page: bob } = b;
		const before = await messages(bob, ROOM);
		const joins = sent(b, 'join').length;
		await bob.reload();
		await live(bob);
		await eventually(async () => assert.deepEqual(await messages(bob, ROOM), before));
		assert.equal(sent(b, 'join')[joins].since, undefined, 'a fresh page joins plainly');
	});

	it('gw1 killed under alice: reconnecting, back on gw2 through the front, no message missing or doubled', { skip: PART !== 'chat' }, async () => {
		const a = users.alice, { page: alice } = a, { page: bob } = users.bob;
		const pids = (process.env.GW1_PIDS || '').split(/\s+/).filter(Boolean).map(Number);
		assert.equal(pids.length, 2, 'GW1_PIDS: the relay and the gateway');
		for (let i = 1; i <= 5; i++) await say(bob, `before ${i}`);
		await eventually(async () => assert.equal((await texts(alice, ROOM)).at(-1), 'before 5'));
		const lastSeq = Math.max(...await seqs(alice, ROOM));
		const joins = sent(a, 'join').length;
		const nstates = (await states(alice)).length;

		// The front answers nobody until bob has spoken, so that alice has
		// to recover what she missed rather than get it live.
		fr.hold(true);
		for (const pid of pids) process.kill(pid, 'SIGKILL');
		await alice.locator('#conn[data-state=reconnecting]', { hasText: /^reconnecting in \d+s$/ }).waitFor({ timeout: WAIT });
		for (let i = 1; i <= 10; i++) await say(bob, `during ${i}`);
		await say(alice, 'alice, while cut off');
		await eventually(async () => assert.equal((await texts(bob, ROOM)).at(-1), 'during 10'));
		assert.equal((await texts(alice, ROOM)).at(-1), 'before 5');
		assert.deepEqual((await outbox(alice, ROOM)).map((x) => [x.cls, x.state, x.text]),
			[['pending', 'waiting for the connection…', 'alice, while cut off']]);
		fr.hold(false);
		// While held, her tries failed and backed off, doubling up to the
		// page's cap: the next may be that far away (one that failed just
		// before the release sets it then), and then it has WAIT to get
		// through. (No 'online' event hurries it: a gateway dying is not
		// the network going away; she waits, as a user would.)
		await live(alice, BACKOFF_CAP + WAIT);
		assert.deepEqual((await states(alice)).slice(nstates).slice(-3), ['reconnecting', 'connecting', 'live']);
		for (let i = 1; i <= 5; i++) await say(bob, `after ${i}`);

		// A message reaches a page only after the archive has stored it
		// (chat-archive store sends it out after its COMMIT): once bob's
		// page has every message, so has the archive. In no set order:
		// alice's queued message goes out when her rejoin is answered,
		// while bob's "after"s do not wait for that, so hers may be
		// sequenced among them or after the last.
		const said = ['hello from alice', 'hello from bob', ...range(1, 5).map((i) => `before ${i}`),
			...range(1, 10).map((i) => `during ${i}`), 'alice, while cut off',
			...range(1, 5).map((i) => `after ${i}`)].sort();
		await eventually(async () => assert.deepEqual((await texts(bob, ROOM)).sort(), said));
		const want = await archive(bob, ROOM);
		assert.deepEqual(want.map((m) => m.seq), range(1, want.length), 'the archive: seqs 1..n');
		assert.equal(want.length, 2 + 5 + 10 + 1 + 5);
		const stored = want.map((m) => m.body.text);
		assert.deepEqual([...stored].sort(), said, 'the archive: each message once');
		// What is ordered: hers was sent after bob's page had "during 10".
		assert.ok(stored.indexOf('alice, while cut off') > stored.indexOf('during 10'), 'hers after what she missed');
		for (const name of ['alice', 'bob']) {
			const page = users[name].page;
			await eventually(async () => assert.deepEqual(
				(await messages(page, ROOM)).map((m) => [m.seq, m.id]),
				want.map((m) => [m.seq, m.id])), WAIT);
			assert.deepEqual(await texts(page, ROOM), want.map((m) => m.body.text), name);
		}
		await eventually(async () => assert.deepEqual(await outbox(alice, ROOM), []));
		const mine = (await messages(alice, ROOM)).filter((m) => m.text === 'alice, while cut off');
		assert.equal(mine.length, 1);
		assert.match(mine[0].id, /^gw2-/, 'her message went through gw2');
		const rejoin = sent(a, 'join').slice(joins);
		assert.ok(rejoin.length >= 1);
		assert.equal(rejoin[0].since, lastSeq, 'she resumed with since = the last seq she had');
		assert.ok(!(await alice.locator('.log .gap').count()), 'no gap reported');
	});

	it('without chat-presence the page says quietly that the list is unavailable', { skip: PART !== 'nopresence' }, async () => {
		assert.ok(!PRESENCE, 'PRESENCE is not set');
		const erin = await open(browser, GW1, 'erin', ['quiet']);
		users.erin = erin;
		await live(erin.page);
		const frank = await open(browser, GW2, 'frank', ['quiet']);
		users.frank = frank;
		await live(frank.page);
		// (with --presence service, the default, nobody tells a page who
		// came either: each page knows only that its own user is here)
		for (const u of [erin, frank]) {
			await u.page.locator('#who-note', { hasText: 'unavailable' }).waitFor({ timeout: WAIT });
			assert.equal(await u.page.locator('.log .note.err').count(), 0, 'no error line in the log');
			assert.deepEqual(await presence(u.page), [u.user]);
			assert.equal(await u.page.locator('#conn').getAttribute('data-state'), 'live');
		}
		// and the page works on
		await say(frank.page, 'still here');
		await eventually(async () => assert.deepEqual(await texts(erin.page, 'quiet'), ['still here']));
	});

	it('presence: a page on each gateway lists both users, and drops one who leaves', { skip: PART !== 'presence' }, async () => {
		const carol = await open(browser, GW1, 'carol', ['meet']);
		const dave = await open(browser, GW2, 'dave', ['meet']);
		users.carol = carol;
		users.dave = dave;
		for (const u of [carol, dave]) {
			await live(u.page);
			await eventually(async () => assert.deepEqual(await presence(u.page), ['carol', 'dave']));
			assert.equal(await u.page.locator('#who-note').textContent(), '');
		}
		await dave.page.close();
		await eventually(async () => assert.deepEqual(await presence(carol.page), ['carol']));
		delete users.dave;
	});

	it('no page threw an error', () => {
		for (const [name, u] of Object.entries(users)) assert.deepEqual(u.errors, [], name);
	});
});
