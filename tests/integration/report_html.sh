#!/usr/bin/env bash
# The bench results folder's report.html opened in a real browser
# (Debian's chromium, headless; make consumers installs it): it renders
# with no console message, has one results row per result, draws the
# drill-down waterfalls, and fetches nothing (self-contained).  The
# screenshot is kept in build/test-artifacts/report_html/.  Without
# chromium: SKIPPED.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
browser=$(command -v chromium || command -v chromium-browser) ||
	skip "no chromium: run 'make consumers' (Debian chromium)"
tmp=$(mktemp -d /tmp/tj-report-html.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
keep=$TJ_ROOT/build/test-artifacts/report_html
mkdir -p "$keep"

"$tj" bench --quick --requests 60 --scenarios threadpool,async --no-found --no-plots \
	-o "$tmp/res" --work "$tmp/work" >"$tmp/bench.out" 2>&1 || fail "bench: $(tail -5 "$tmp/bench.out")"
html=$tmp/res/report.html
[ -s "$html" ] || fail "no report.html beside report.md"
ls "$tmp/res" | grep -q 'tmp' && fail "a temporary file was left in the results folder"
# self-contained: no script, style, image or link from elsewhere
grep -Eqi '<(script|img|link|iframe)[^>]* (src|href)=|url\(|@import|https?://' "$html" &&
	fail "report.html refers to something outside itself"
results=$(grep -c '"correlator":' "$tmp/res/results.json")
[ "$results" -gt 0 ] || fail "results.json has no result"

chrome() { # ARGS...: headless, no network, logs (console included) on stderr
	timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --host-resolver-rules='MAP * ~NOTFOUND' \
		--user-data-dir="$tmp/profile" --enable-logging=stderr --v=0 "$@"
}
chrome --dump-dom "file://$html" >"$tmp/dom.html" 2>"$tmp/chrome.err" ||
	fail "chromium failed: $(grep -v dbus "$tmp/chrome.err" | tail -5)"
if grep -q ':CONSOLE' "$tmp/chrome.err"; then
	fail "console messages: $(grep ':CONSOLE' "$tmp/chrome.err" | head -5)"
fi
rows=$(grep -o '<tr class="result' "$tmp/dom.html" | wc -l)
[ "$rows" -eq "$results" ] || fail "$rows table rows for $results results"
falls=$(grep -o '<svg class="waterfall"' "$tmp/dom.html" | wc -l)
[ "$falls" -ge 2 ] || fail "no drill-down waterfall drawn"
grep -q '<rect class="bad"' "$tmp/dom.html" || fail "no wrong call drawn in red"
grep -q '<details class="drill" open' "$tmp/dom.html" || fail "no drill-down open"
# the tables sort: a click on "F1 %" orders the rows by F1, a second reverses
sed 's|</body>|<script>var h=document.querySelectorAll("#results th")[4],o=[];h.click();o.push(Array.prototype.map.call(document.querySelectorAll("#results tbody tr"),function(r){return r.cells[4].getAttribute("data-v")}).join(" "));h.click();o.push(document.querySelector("#results tbody tr").cells[4].getAttribute("data-v"));document.body.setAttribute("data-sorted",o.join("/"))</script></body>|' \
	"$html" >"$tmp/res/sort.html"
chrome --dump-dom "file://$tmp/res/sort.html" >"$tmp/sort.dom" 2>/dev/null || fail "chromium (sort)"
sorted=$(grep -o 'data-sorted="[^"]*"' "$tmp/sort.dom" | cut -d'"' -f2)
asc=${sorted%/*} top=${sorted#*/}
[ -n "$asc" ] || fail "the sort script did not run"
[ "$(echo "$asc" | tr ' ' '\n' | sort -g | tr '\n' ' ' | sed 's/ $//')" = "$asc" ] ||
	fail "F1 column not sorted ascending: $asc"
[ "$top" = "$(echo "$asc" | tr ' ' '\n' | tail -1)" ] || fail "second click did not reverse: top $top"
echo "sorted by F1: $asc (reversed top $top)"
rm "$tmp/res/sort.html"
chrome --window-size=1200,1500 --hide-scrollbars --screenshot="$tmp/res/report.png" \
	"file://$html" >/dev/null 2>&1 || fail "chromium could not take a screenshot"
[ -s "$tmp/res/report.png" ] || fail "no screenshot"
cp "$html" "$tmp/res/report.png" "$keep/"
echo "report.html: $rows rows, $falls waterfalls, no console message; screenshot in $keep/report.png"
