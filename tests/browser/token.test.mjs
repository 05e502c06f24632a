// chat-gw's browser client with ?token=JWT against a gateway run with
// --auth jwt: the token's sub names the user on the page and marks her
// messages; a room the token's rooms claim does not allow is refused and
// said so; when the token expires while connected (error unauthorized,
// close 1008) the page says so and stops retrying, since only a new token
// helps.
//
// env: GW_HTTP    the gateway, http://HOST:PORT, with --auth jwt (required)
//      TOKEN_CMD  a command printing a token for "erin", rooms ["team-*"],
//                 that expires a few seconds later (required); run just
//                 before the page opens, so a slow browser start does not
//                 eat its lifetime
//      CHROMIUM   the browser (/usr/bin/chromium)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { launch, eventually, live, messages, say, states } from './lib.mjs';

const GW = process.env.GW_HTTP, TOKEN_CMD = process.env.TOKEN_CMD;

if (!GW || !TOKEN_CMD) {
	console.error('token.test.mjs: set GW_HTTP and TOKEN_CMD');
	process.exit(64);
}

let browser, page;
const errors = [];

describe('chat page with a token', () => {
	before(async () => {
		browser = await launch();
	});

	after(async () => {
		await browser?.close();
	});

	it('the token names the user; her message is marked as hers', async () => {
		page = await (await browser.newContext()).newPage();
		page.on('pageerror', (e) => errors.push(String(e)));
		const token = execSync(TOKEN_CMD, { encoding: 'utf8' }).trim();
		await page.goto(`${GW}/?token=${encodeURIComponent(token)}&room=team-a&room=lobby`);
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
		await page.locator('#conn[data-state=offline]', { hasText: 'token expired' }).waitFor({ timeout: 15000 });
		const n = (await states(page)).length;
		await page.waitForTimeout(1500); // longer than the first backoff: no try comes
		assert.equal((await states(page)).length, n);
		assert.equal(await page.locator('#conn').getAttribute('data-state'), 'offline');
		assert.deepEqual(errors, []);
	});
});
