// What the browser tests share: starting Chromium the one way this machine
// allows (headless, no sandbox, no network but loopback), opening a page of
// the chat client as a user in its own browser context, reading what the
// page shows, and polling a condition (never sleeping and hoping).

import { chromium } from 'playwright-core';

export const WAIT = 10000; // ms, for any one condition
// The page's reconnect backoff cap (BACKOFF_CAP in cmd/chat-gw/page.html):
// after a failed try the next one may be this far away.
export const BACKOFF_CAP = 10000; // ms

export function launch() {
	return chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
			'--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
}

// eventually(fn): call fn until it stops throwing (an assert-style poll), at
// most `ms`; then throw its last error.
export async function eventually(fn, ms = WAIT) {
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

// open(browser, base, user, rooms, {setup}): a page of the client at base
// (http://HOST:PORT) as user, in rooms (the first shown), in a new context.
// Returns {ctx, page, user, frames: [frames the page sent], errors: []};
// setup(page, u) runs before the page loads (to route its WebSocket).
export async function open(browser, base, user, rooms, opts = {}) {
	const ctx = await browser.newContext();
	const page = await ctx.newPage();
	const u = { ctx, page, user, frames: [], errors: [] };
	page.on('pageerror', (e) => u.errors.push(String(e)));
	page.on('websocket', (ws) => ws.on('framesent', (f) => {
		try {
			u.frames.push(JSON.parse(f.payload));
		} catch (e) {
			u.errors.push('sent a frame that is not JSON: ' + f.payload);
		}
	}));
	if (opts.setup) await opts.setup(page, u);
	const q = new URLSearchParams({ user });
	for (const r of rooms) q.append('room', r);
	await page.goto(`${base}/?${q}`);
	return u;
}

export const sent = (u, type) => u.frames.filter((f) => f.type === type);

// live(page, ms): the page says it is connected, within ms.
export async function live(page, ms = WAIT) {
	await page.locator('#conn[data-state=live]').waitFor({ timeout: ms });
}

// The message lines of a room's log, in screen order:
// [{seq, id, from, text, time, title, mine, json}].
export function messages(page, room) {
	return page.evaluate((room) => {
		const view = [...document.querySelectorAll('.view')].find((v) => v.dataset.room === room);
		if (!view) return [];
		return [...view.querySelectorAll('.log li.msg')].map((li) => ({
			seq: Number(li.dataset.seq),
			id: li.dataset.id,
			from: li.querySelector('.from').textContent,
			text: li.querySelector('.body').textContent,
			json: li.querySelector('.body').tagName === 'CODE',
			time: li.querySelector('time').textContent,
			title: li.querySelector('time').title,
			mine: li.classList.contains('mine'),
		}));
	}, room);
}
export const texts = async (page, room) => (await messages(page, room)).map((m) => m.text);
export const seqs = async (page, room) => (await messages(page, room)).map((m) => m.seq);

// The outbox lines of a room: [{ref, state, text}].
export function outbox(page, room) {
	return page.evaluate((room) => {
		const view = [...document.querySelectorAll('.view')].find((v) => v.dataset.room === room);
		return [...view.querySelectorAll('.outbox li')].map((li) => ({
			ref: li.dataset.ref, cls: li.className,
			state: li.querySelector('.state').textContent,
			text: li.querySelector('.body').textContent,
		}));
	}, room);
}

export const presence = (page) =>
	page.locator('#who li').evaluateAll((lis) => lis.map((li) => li.textContent).sort());
export const current = (page) => page.evaluate(() => window.chat.current?.name);
export const states = (page) => page.evaluate(() => window.chat.conn.states.slice());

export async function say(page, text) {
	await page.locator('#text').fill(text);
	await page.locator('#text').press('Enter');
}

// The room list: [{name, unread, current}].
export function roomList(page) {
	return page.locator('#rooms li').evaluateAll((lis) => lis.map((li) => ({
		name: li.querySelector('.go').textContent.replace(/^# /, ''),
		unread: Number(li.querySelector('.unread').textContent || 0),
		current: li.classList.contains('current'),
	})));
}

export async function switchTo(page, room) {
	await page.locator('#rooms li .go', { hasText: new RegExp(`^# ${room.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).click();
}

export const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
