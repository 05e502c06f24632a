// chat-gw's browser client (GET /, cmd/chat-gw/page.html) in a real headless
// Chromium, two users in two browser contexts: connecting, the room's recent
// messages on the first join, sending with Enter, presence, typing, resuming
// with "since" after a drop, and (a third user behind a proxy that loses a
// frame) filling a seq gap from history. Every wait polls a condition, bounded.
//
// env: GW_HTTP    the gateway, http://HOST:PORT (required)
//      ROOM       the room (lobby)
//      SEED       the body of a message already in the room before the pages
//                 open (the bats file sends it with chat-cli); checked if set
//      SEED_FROM  who sent it (carol)
//      CHROMIUM   the browser (/usr/bin/chromium)
//
// run: GW_HTTP=http://127.0.0.1:8080 node --test tests/browser/chat.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const GW = process.env.GW_HTTP;
const ROOM = process.env.ROOM || 'lobby';
const SEED = process.env.SEED || '';
const SEED_FROM = process.env.SEED_FROM || 'carol';
const WAIT = 10000; // ms, for any one condition

if (!GW) {
	console.error('chat.test.mjs: set GW_HTTP to the gateway, e.g. http://127.0.0.1:8080');
	process.exit(64);
}

// eventually(fn): call fn until it stops throwing (an assert-style poll), at
// most `ms`; then throw its last error.
async function eventually(fn, ms = WAIT) {
	const end = Date.now() + ms;
	for (;;) {
		try {
			return await fn();
		} catch (e) {
			if (Date.now() > end) throw e;
		}
		await new Promise((r) => setTimeout(r, 50));
	}
}

// The message lines of a page's log, in screen order: [{from, text, seq}].
function messages(page) {
	return page.locator('#log li.msg').evaluateAll((lis) => lis.map((li) => {
		const from = li.querySelector('.from')?.textContent ?? '';
		return { from, text: li.textContent.slice(from.length), seq: Number(li.dataset.seq) };
	}));
}
const texts = async (page) => (await messages(page)).map((m) => m.text);
const count = (list, text) => list.filter((t) => t === text).length;
const presence = (page) =>
	page.locator('#who li').evaluateAll((lis) => lis.map((li) => li.textContent).sort());
const status = (page) => page.locator('#status').textContent();

let browser;
const users = {}; // name -> { ctx, page, joins: [join frames sent], errors: [] }

async function open(name) {
	const ctx = await browser.newContext();
	const page = await ctx.newPage();
	const u = { ctx, page, joins: [], errors: [] };
	page.on('pageerror', (e) => u.errors.push(String(e)));
	page.on('websocket', (ws) => ws.on('framesent', (f) => {
		const m = JSON.parse(f.payload);
		if (m.type === 'join') u.joins.push(m);
	}));
	await page.goto(`${GW}/?user=${name}&room=${encodeURIComponent(ROOM)}`);
	users[name] = u;
	return page;
}

async function online(page) {
	await page.locator('#status', { hasText: /^online/ }).waitFor({ timeout: WAIT });
}

async function say(page, text) {
	await page.locator('#text').fill(text);
	await page.locator('#text').press('Enter');
}

describe('chat page', () => {
	before(async () => {
		browser = await chromium.launch({
			executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
			args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
				'--no-first-run', '--disable-background-networking',
				'--disable-component-update', '--disable-sync'],
		});
	});

	after(async () => {
		await browser?.close();
	});

	it('alice and bob connect and show "online"', async () => {
		const alice = await open('alice');
		await online(alice);
		assert.match(await status(alice), /^online as alice/);
		const bob = await open('bob');
		await online(bob);
		assert.match(await status(bob), /^online as bob/);
	});

	it('the first join shows a message sent (by chat-cli) before the page opened', { skip: !SEED && 'SEED not set' }, async () => {
		for (const name of ['alice', 'bob']) {
			const page = users[name].page;
			await eventually(async () => assert.equal(count(await texts(page), SEED), 1));
			const m = (await messages(page)).find((x) => x.text === SEED);
			assert.equal(m.from, SEED_FROM);
			assert.equal(users[name].joins.length, 1);
			assert.equal(users[name].joins[0].since, undefined, 'a first join has no since');
		}
	});

	it('the presence list on each page shows both users', async () => {
		for (const name of ['alice', 'bob'])
			await eventually(async () => assert.deepEqual(await presence(users[name].page), ['alice', 'bob']));
	});

	it('bob sees "alice is typing" while alice types, and not once she has sent', async () => {
		const { page: alice } = users.alice, { page: bob } = users.bob;
		await alice.locator('#text').pressSequentially('hello b');
		await bob.locator('#typing', { hasText: /^alice is typing/ }).waitFor({ timeout: WAIT });
		assert.equal(await alice.locator('#typing').textContent(), '', 'no notice of our own typing');
		await alice.locator('#text').pressSequentially('ob');
		await alice.locator('#text').press('Enter');
		await eventually(async () => assert.equal(count(await texts(bob), 'hello bob'), 1));
		assert.equal(await bob.locator('#typing').textContent(), '', 'her message ends her typing');
	});

	it('a message alice sends with Enter appears once on her page and once on bob\'s', async () => {
		const { page: alice } = users.alice, { page: bob } = users.bob;
		assert.equal(await alice.locator('#text').inputValue(), '', 'the input is cleared');
		// Once the ack is in, the "sending" line is gone and only the message is left.
		await alice.locator('#log li.pending').first().waitFor({ state: 'detached', timeout: WAIT });
		await eventually(async () => assert.equal(count(await texts(alice), 'hello bob'), 1));
		for (const page of [alice, bob]) {
			const m = (await messages(page)).filter((x) => x.text === 'hello bob');
			assert.equal(m.length, 1);
			assert.equal(m[0].from, 'alice');
		}
		assert.equal(await alice.locator('#log li', { hasText: 'hello bob' }).count(), 1,
			'no other line repeats the text');
	});

	it('after a drop alice reconnects by herself and shows what she missed, once and in order', async () => {
		const a = users.alice, { page: alice } = a, { page: bob } = users.bob;
		const before = await messages(alice);
		const lastSeq = Math.max(...before.map((m) => m.seq));
		const joins = a.joins.length;
		// Offline first, so that the page cannot come back before bob has spoken.
		await a.ctx.setOffline(true);
		await alice.evaluate(() => ws.close());
		await alice.locator('#status', { hasText: /^offline/ }).waitFor({ timeout: WAIT });
		// The gateway saw her go.
		await eventually(async () => assert.deepEqual(await presence(bob), ['bob']));
		const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
		for (const t of missed) await say(bob, t);
		await eventually(async () => assert.deepEqual((await texts(bob)).slice(-3), missed));
		assert.equal((await texts(alice)).filter((t) => missed.includes(t)).length, 0);

		await a.ctx.setOffline(false);
		await online(alice);
		await eventually(async () => assert.deepEqual(await texts(alice), [...before.map((m) => m.text), ...missed]));
		const rejoin = a.joins.slice(joins);
		assert.ok(rejoin.length >= 1, 'she joined again');
		assert.equal(rejoin.at(-1).since, lastSeq, 'the join resumes with since = the last seq seen');
		await eventually(async () => assert.deepEqual(await presence(bob), ['alice', 'bob']));
		await eventually(async () => assert.deepEqual(await presence(alice), ['alice', 'bob']));
	});

	it('each page shows every message exactly once, in seq order', async () => {
		const want = [...(SEED ? [SEED] : []), 'hello bob',
			'while you were away 1', 'while you were away 2', 'while you were away 3'];
		for (const name of ['alice', 'bob']) {
			const m = await messages(users[name].page);
			assert.deepEqual(m.map((x) => x.text), want, name);
			for (let i = 1; i < m.length; i++) assert.ok(m[i].seq > m[i - 1].seq, `${name}: seq order`);
		}
	});

	it('alice\'s presence list drops bob when his page closes', async () => {
		await users.bob.page.close();
		await eventually(async () => assert.deepEqual(await presence(users.alice.page), ['alice']));
	});

	it('a seq gap in the live stream is filled from history, in place', async () => {
		// dave's page sees the gateway through a proxy that loses one message.
		const ctx = await browser.newContext();
		const page = await ctx.newPage();
		const u = { ctx, page, joins: [], errors: [], history: [] };
		users.dave = u;
		page.on('pageerror', (e) => u.errors.push(String(e)));
		let dropped = 0;
		await page.routeWebSocket(/\/ws\?/, (ws) => {
			const server = ws.connectToServer();
			ws.onMessage((m) => {
				const f = JSON.parse(m);
				if (f.type === 'history') u.history.push(f);
				server.send(m);
			});
			server.onMessage((m) => {
				const f = JSON.parse(m);
				if (f.type === 'message' && f.body === 'lost on the way') dropped++;
				else ws.send(m);
			});
		});
		await page.goto(`${GW}/?user=dave&room=${encodeURIComponent(ROOM)}`);
		await online(page);
		const earlier = await texts(users.alice.page);
		await eventually(async () => assert.deepEqual(await texts(page), earlier));
		await eventually(async () => assert.deepEqual(await presence(users.alice.page), ['alice', 'dave']));

		const alice = users.alice.page;
		await say(alice, 'lost on the way');
		await say(alice, 'after the loss');
		await eventually(async () => assert.deepEqual((await texts(alice)).slice(-2), ['lost on the way', 'after the loss']));
		await eventually(async () => assert.deepEqual(await texts(page), [...earlier, 'lost on the way', 'after the loss']));
		assert.equal(dropped, 1, 'the proxy dropped the live copy');
		const after = (await messages(alice)).at(-1).seq;
		assert.ok(u.history.some((h) => h.before === after && h.limit === 1),
			'the page asked for the one missing message');
	});

	it('no page threw an error', () => {
		for (const [name, u] of Object.entries(users)) assert.deepEqual(u.errors, [], name);
	});
});
