#!/usr/bin/env node
// tj-node-service: one workload service on Node.js's event loop, for the
// labeled real captures (datasets/real/README.md).  It is what a Node
// back-end-for-front-end does: for each request, calls to its downstreams
// through one http.Agent with keepAlive and a bounded maxSockets per
// origin, as Node's global agent (a real keepalive pool: a call finding
// every socket busy waits in the agent's queue and is written when an
// earlier call's reply frees a socket), then the reply.  With --calls
// chain (default) each call is issued from the previous call's response
// handler (sequential, dependent calls); with --calls parallel all at
// once (Promise.all).  traceparent is propagated with the span-id rule of
// datasets/label/label.h (BigInt splitmix64), so `tracejoin label`
// recovers the truth.  No module outside Node's own.
'use strict';
const http = require('http');

const USAGE = `usage: tj-node-service.js --role NAME --listen ADDR:PORT [OPTIONS]

One service of a workload on Node.js's event loop: answers HTTP/1.1
requests, calling its downstreams for each through a keepalive
http.Agent, propagating traceparent (datasets/label/label.h).

options:
  --role NAME           service name (path of its calls, messages)
  --listen ADDR:PORT    IPv4 address and port to listen on
  --call NAME=ADDR:PORT a downstream, called once per request in the
                        order given (repeatable, at most 32)
  --calls chain|parallel  chain (default): each call from the previous
                        call's response handler; parallel: all at once
                        (Promise.all)
  --max-sockets K       keepalive sockets per downstream address (default 4,
                        1-1024); more calls wait in the agent's queue
  --work-us US          mean handler CPU time on the loop (exponential,
                        busy: it blocks the loop as real handler code
                        does), half before the calls, half after
                        (default 100, at most 1000000)
  --req-bytes N         body of each call (default 64, at most 4096)
  --resp-bytes N        body of each response (default 256, at most 65536)
  --seed S              service-time generator seed (default 1)
  -h, --help            this text
`;

// ---- the span-id rule (datasets/label/label.c), in 64-bit BigInt ----
const M64 = (1n << 64n) - 1n;
function hash64(x) { // splitmix64's finaliser (lib/u64map.h tj_hash64)
	x ^= x >> 30n;
	x = (x * 0xbf58476d1ce4e5b9n) & M64;
	x ^= x >> 27n;
	x = (x * 0x94d049bb133111ebn) & M64;
	return x ^ (x >> 31n);
}
const mix = (x) => hash64((x + 0x9e3779b97f4a7c15n) & M64);
function serverSpan(hi, lo, parent) {
	const s = mix(mix(hi ^ 0x5352565253504e31n) ^ mix(lo) ^ parent);
	return s === 0n ? 1n : s;
}
function callSpan(server, i) {
	const c = mix(server ^ mix(0x43414c4c00000000n + BigInt(i)));
	return c === 0n ? 1n : c;
}
const hex16 = (x) => x.toString(16).padStart(16, '0');
const TP_RE = /^00-([0-9a-f]{16})([0-9a-f]{16})-([0-9a-f]{16})-[0-9a-f]{2}$/i;

// ---- options ----
function fail(msg) {
	process.stderr.write(`tj-node-service: ${msg}\n`);
	process.exit(2);
}
function parseUint(opt, text, min, max) {
	if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max)
		fail(`bad value for ${opt}: '${text}' (try --help)`);
	return Number(text);
}
function parseHostPort(opt, text) {
	const m = /^([0-9]{1,3}(?:\.[0-9]{1,3}){3}):([0-9]{1,5})$/.exec(text);
	if (!m || m[1].split('.').some((o) => Number(o) > 255) || Number(m[2]) < 1 || Number(m[2]) > 65535)
		fail(`bad value for ${opt}: '${text}' (IPv4 ADDR:PORT; try --help)`);
	return { host: m[1], port: Number(m[2]) };
}
function parseArgs(argv) {
	const o = { role: null, listen: null, calls: [], mode: 'chain', maxSockets: 4, workUs: 100,
		reqBytes: 64, respBytes: 256, seed: 1 };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === '-h' || a === '--help') {
			process.stdout.write(USAGE);
			process.exit(0);
		}
		const takes = ['--role', '--listen', '--call', '--calls', '--max-sockets', '--work-us',
			'--req-bytes', '--resp-bytes', '--seed'];
		if (!takes.includes(a))
			fail(a.startsWith('-') ? `unknown option ${a} (try --help)` : `unexpected argument '${a}'`);
		if (i + 1 >= argv.length)
			fail(`${a} needs a value`);
		const v = argv[++i];
		switch (a) {
		case '--role':
			if (!/^[A-Za-z0-9_.-]{1,63}$/.test(v)) fail(`bad value for --role: '${v}' (try --help)`);
			o.role = v;
			break;
		case '--listen': o.listen = parseHostPort(a, v); break;
		case '--call': {
			const eq = v.indexOf('=');
			if (eq <= 0 || !/^[A-Za-z0-9_.-]{1,63}$/.test(v.slice(0, eq)))
				fail(`bad value for --call: '${v}' (NAME=ADDR:PORT; try --help)`);
			if (o.calls.length >= 32) fail('at most 32 --call');
			o.calls.push({ name: v.slice(0, eq), ...parseHostPort(a, v.slice(eq + 1)) });
			break;
		}
		case '--calls':
			if (v !== 'chain' && v !== 'parallel') fail(`bad value for --calls: '${v}' (chain or parallel)`);
			o.mode = v;
			break;
		case '--max-sockets': o.maxSockets = parseUint(a, v, 1, 1024); break;
		case '--work-us': o.workUs = parseUint(a, v, 0, 1000000); break;
		case '--req-bytes': o.reqBytes = parseUint(a, v, 0, 4096); break;
		case '--resp-bytes': o.respBytes = parseUint(a, v, 0, 65536); break;
		case '--seed': o.seed = parseUint(a, v, 0, 2 ** 32 - 1); break;
		}
	}
	if (!o.role || !o.listen)
		fail('--role and --listen are required (try --help)');
	return o;
}

const opt = parseArgs(process.argv.slice(2));
const counts = { served: 0, noTp: 0, calls: 0, callErrors: 0, bad: 0 };

// service times: exponential, from a small seeded generator (mulberry32)
let rngState = opt.seed >>> 0;
function uniform() {
	rngState = (rngState + 0x6d2b79f5) >>> 0;
	let t = rngState;
	t = Math.imul(t ^ (t >>> 15), t | 1);
	t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
	return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function busy(us) { // handler code: it holds the loop, as real handlers do
	const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
	while (process.hrtime.bigint() < end)
		;
}
const workHalf = () => (opt.workUs ? -Math.log(1 - uniform()) * opt.workUs / 2 : 0);
function randomId() {
	return (BigInt(Math.floor(uniform() * 2 ** 32)) << 32n) | BigInt(Math.floor(uniform() * 2 ** 32));
}

// One agent, as a process's http.globalAgent is: maxSockets is per origin,
// so two --call of the same downstream share its K sockets.
const agent = new http.Agent({ keepAlive: true, maxSockets: opt.maxSockets });
const downstreams = opt.calls;
const callBody = Buffer.alloc(opt.reqBytes, 'x');
const respBody = Buffer.alloc(opt.respBytes, 'x');

// one downstream call carrying (trace, callSpan(span, i)); resolves when
// its reply has been read whole, rejects on any error
function call(ctx, i) {
	const d = downstreams[i];
	const tp = `00-${hex16(ctx.hi)}${hex16(ctx.lo)}-${hex16(callSpan(ctx.span, i))}-01`;
	counts.calls++;
	return new Promise((resolve, rejectCall) => {
		let failed = false;
		const reject = (e) => { // one count per failed call, however it fails
			if (!failed) counts.callErrors++;
			failed = true;
			rejectCall(e);
		};
		const req = http.request({
			agent, host: d.host, port: d.port, method: 'GET', path: '/' + d.name,
			headers: { traceparent: tp, 'Content-Length': callBody.length },
		}, (res) => {
			res.on('data', () => {});
			res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
			res.on('error', reject);
		});
		req.setTimeout(10000, () => req.destroy(new Error('timeout')));
		req.on('error', reject);
		req.end(callBody);
	});
}

async function handle(req, res) {
	let ctx;
	const m = TP_RE.exec(req.headers.traceparent || '');
	if (m) {
		const hi = BigInt('0x' + m[1]), lo = BigInt('0x' + m[2]);
		ctx = { hi, lo, span: serverSpan(hi, lo, BigInt('0x' + m[3])) };
	} else {
		counts.noTp++;
		ctx = { hi: randomId(), lo: randomId() | 1n, span: randomId() | 1n };
	}
	busy(workHalf());
	let ok = true;
	try {
		if (opt.mode === 'chain') {
			// each call from the previous one's response handler: the
			// continuation of `await` runs in the reply's 'end' callback
			for (let i = 0; i < downstreams.length; i++)
				await call(ctx, i);
		} else {
			await Promise.all(downstreams.map((_, i) => call(ctx, i)));
		}
	} catch (e) {
		ok = false;
	}
	busy(workHalf());
	counts.served++;
	res.writeHead(ok ? 200 : 502, { 'Content-Length': respBody.length });
	res.end(respBody);
}

const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
	req.on('data', () => {});
	req.on('end', () => handle(req, res));
});
server.on('clientError', (err, sock) => {
	counts.bad++;
	if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
	else sock.destroy();
});
server.on('error', (e) => {
	process.stderr.write(`tj-node-service ${opt.role}: cannot listen on ${opt.listen.host}:${opt.listen.port}: ${e.message}\n`);
	process.exit(1);
});
server.listen(opt.listen.port, opt.listen.host, 256, () => {
	process.stdout.write(`tj-node-service ${opt.role}: listening on ${opt.listen.host}:${opt.listen.port}\n`);
});

function stop() {
	server.close();
	server.closeAllConnections();
	agent.destroy();
	process.stdout.write(`tj-node-service ${opt.role}: served ${counts.served} requests ` +
		`(${counts.noTp} without traceparent), made ${counts.calls} calls ` +
		`(${counts.callErrors} failed), ${counts.bad} bad requests\n`, () => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
