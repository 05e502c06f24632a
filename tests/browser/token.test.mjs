// chat-gw's browser client with ?token=JWT against a gateway run with
// --auth jwt: the token's sub names the user on the page and marks her
// messages; a room the token's rooms claim does not allow is refused and
// said so; when the token expires while connected (error unauthorized,
// close 1008) the page says so and stops retrying, since only a new token
// helps.
//
// env: GW_HTTP    the gateway, http://HOST:PORT, with --auth jwt and
//                 --jwt-leeway 0 (required)
//      TOKEN_CMD  a command printing a token for "erin", rooms ["team-*"],
//                 to which the test adds --ttl D (required); run just before
//                 a page opens, so that a slow browser does not eat its
//                 lifetime
//      CHROMIUM   the browser (/usr/bin/chromium)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { WAIT, launch, eventually, live, messages, say, states } from './lib.mjs';

const GW = process.env.GW_HTTP, TOKEN_CMD = process.env.TOKEN_CMD;
// The token that expires in the test: long enough for a page to open and
// go live under load (the gateway refuses it at the door once expired), as
// short as that allows, since the test waits for it.
const SHORT_TTL = 6; // s

if (!GW || !TOKEN_CMD) {
	console.error('token.test.mjs: set GW_HTTP and TOKEN_CMD');
	process.exit(64);
}

let browser, page;
const errors = [];

// signIn(ttl, rooms): a page in a new context with a token of ttl, minted
// once the page is there (a new context and page take a while under load);
// returns {page, exp} (exp: the token's, in s since the epoch).
async function signIn(ttl, rooms) {
	const p = await (await browser.newContext()).newPage();
	p.on('pageerror', (e) => errors.push(String(e)));
	const token = execSync(`${TOKEN_CMD} --ttl ${ttl}`, { encoding: 'utf8' }).trim();
	const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp;
	const q = new URLSearchParams({ token });
	for (const r of rooms) q.append('room', r);
	await p.goto(`${GW}/?${q}`);
	return { page: p, exp };
}

describe('chat page with a token', () => {
	before(async () => {
		browser = await launch();
	});

	after(async () => {
		await browser?.close();
	});

	// (a token that outlives the test: expiry is the third test's, on a
	// page of its own, so that it cannot cut these short)
	it('the token names the user; her message is marked as hers', async () => {
		({ page } = await signIn('10m', ['team-a', 'lobby']));
		await live(page);
		assert.equal(await page.locator('#me').textContent(), 'erin');
		await say(page, 'signed in');
		await eventually(async () => assert.deepEqual((await messages(page, 'team-a')).map((m) => [m.from, m.text, m.mine]),
			[['erin', 'signed in', true]]));
	});

	it('a room the token does not allow is refused, and said so', async () => {
		await page.locator('#rooms li .go', { hasText: 'lobby' }).click();
		await page.locator('.view[data-room="lobby"] .note.err', { hasText: 'cannot join #lobby: forbidden' })
			.waitFor({ timeout: 10000 });
	});

	it('the token expires: the page is offline and says why, and does not retry', async () => {
		const { page, exp } = await signIn(`${SHORT_TTL}s`, ['team-b']);
		await live(page);
		// The gateway (no leeway) closes at exp, checking once a second.
		await page.locator('#conn[data-state=offline]', { hasText: 'token expired' })
			.waitFor({ timeout: Math.max(0, exp * 1000 - Date.now()) + WAIT });
		assert.ok(Date.now() >= exp * 1000, 'not before the token expired');
		// One connection, ended by the expiry, and no other try.
		assert.deepEqual(await states(page), ['connecting', 'live', 'offline']);
		await page.waitForTimeout(1500); // longer than the first backoff: no try comes
		assert.deepEqual(await states(page), ['connecting', 'live', 'offline']);
		assert.equal(await page.locator('#conn').getAttribute('data-state'), 'offline');
		assert.deepEqual(errors, []);
	});
});
