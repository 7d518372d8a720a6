// Check a `tracejoin export --format perfetto` file as the Trace Event
// Format defines it: a traceEvents array; complete events ("X") with
// numeric ts/dur and integer pid/tid; flow events paired ("s" then "f"
// with the same id, the "f" bound to its enclosing slice); process names.
// Prints "perfetto: X slices, F flows, R red, G green".
//   node check_perfetto.js FILE SLICES FLOWS [RED]
'use strict';
const fs = require('fs');
const [file, wantSlices, wantFlows, wantRed] = process.argv.slice(2);
function fail(msg) { console.error('FAIL: ' + file + ': ' + msg); process.exit(1); }
const j = JSON.parse(fs.readFileSync(file, 'utf8'));
if (!Array.isArray(j.traceEvents)) fail('no traceEvents array');
let slices = 0, red = 0, green = 0;
const s = new Map(), f = new Map(), names = new Set(), pids = new Set();
for (const [i, e] of j.traceEvents.entries()) {
	if (typeof e.ph !== 'string') fail(`event ${i}: no ph`);
	if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) fail(`event ${i}: pid/tid not integers`);
	if (e.ph === 'M') { if (e.name === 'process_name') names.add(e.pid); continue; }
	if (typeof e.ts !== 'number' || e.ts < 0) fail(`event ${i}: bad ts`);
	if (e.ph === 'X') {
		slices++;
		pids.add(e.pid);
		if (typeof e.dur !== 'number' || e.dur < 0) fail(`event ${i}: bad dur`);
		if (typeof e.name !== 'string' || !e.name) fail(`event ${i}: no name`);
		if (e.cname === 'terrible') red++;
		if (e.cname === 'good') green++;
	} else if (e.ph === 's' || e.ph === 'f') {
		const m = e.ph === 's' ? s : f;
		if (m.has(e.id)) fail(`flow id ${e.id}: two "${e.ph}" events`);
		if (e.ph === 'f' && e.bp !== 'e') fail(`flow id ${e.id}: "f" not bound to the enclosing slice`);
		m.set(e.id, e);
	} else fail(`event ${i}: unexpected ph ${e.ph}`);
}
for (const [id, e] of s) {
	if (!f.has(id)) fail(`flow id ${id}: "s" without "f"`);
}
for (const id of f.keys()) if (!s.has(id)) fail(`flow id ${id}: "f" without "s"`);
for (const p of pids) if (!names.has(p)) fail(`pid ${p}: no process_name`);
console.log(`perfetto: ${slices} slices, ${s.size} flows, ${red} red, ${green} green`);
if (wantSlices !== undefined && slices !== +wantSlices) fail(`${slices} slices, want ${wantSlices}`);
if (wantFlows !== undefined && s.size !== +wantFlows) fail(`${s.size} flows, want ${wantFlows}`);
if (wantRed !== undefined && red !== +wantRed) fail(`${red} red slices, want ${wantRed}`);
