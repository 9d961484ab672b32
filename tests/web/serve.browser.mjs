// Browser test of the page `xent serve` shows: headless Chromium (through playwright-core) types
// a note, sees the ghost suggestion, accepts it with Tab, dismisses one with Esc, takes a
// three-word suggestion one word with Ctrl+Right and the rest with Tab, and chats a turn.
//
// Usage: node serve.browser.mjs --xent PATH --model PATH [--screenshots DIR]
// Exit status: 0 passed, 1 failed, 77 skipped (only when a prerequisite is missing and
// XENT_SKIP_BROWSER=1; without it a missing prerequisite is a failure, never a silent pass).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SKIP = 77;
const CHROMIUM = process.env.XENT_CHROMIUM || "/usr/bin/chromium";
const TOTAL_MS = 55_000;  // the whole test, server start and browser included
const t_start = Date.now();

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const xent = arg("--xent");
const model = arg("--model");
const shots = arg("--screenshots", tmpdir());

function log(msg) {
  console.log(`[${((Date.now() - t_start) / 1000).toFixed(1)}s] ${msg}`);
}
function missing(what) {
  if (process.env.XENT_SKIP_BROWSER === "1") {
    console.log(`SKIP: ${what} (XENT_SKIP_BROWSER=1)`);
    process.exit(SKIP);
  }
  console.error(`FAIL: ${what}.\n  Install it with scripts/setup-browser-tests.sh, ` +
                `or set XENT_SKIP_BROWSER=1 to skip this test.`);
  process.exit(1);
}

if (!xent || !model) {
  console.error("usage: node serve.browser.mjs --xent PATH --model PATH [--screenshots DIR]");
  process.exit(1);
}
if (!existsSync(xent)) {
  console.error(`FAIL: no xent binary at ${xent}`);
  process.exit(1);
}
if (!existsSync(model)) {
  console.error(`FAIL: no model at ${model}`);
  process.exit(1);
}
if (!existsSync(CHROMIUM)) missing(`no Chromium at ${CHROMIUM} (Debian package 'chromium')`);
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  missing(`the node module playwright-core is not installed (${e.code || e.message})`);
}

// ---- cleanup: the server and the browser always go, on success, failure or timeout ----------
let server = null, context = null, profile = null;
async function cleanup() {
  if (context) {
    const c = context;
    context = null;
    await Promise.race([c.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  if (server && server.exitCode === null && server.signalCode === null) {
    const s = server;
    const exited = new Promise((r) => s.once("exit", r));
    s.kill("SIGTERM");
    const killer = setTimeout(() => s.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  }
  server = null;
  if (profile) rmSync(profile, { recursive: true, force: true });
  profile = null;
}
const watchdog = setTimeout(async () => {
  console.error(`FAIL: the test ran past ${TOTAL_MS / 1000} s`);
  await cleanup();
  process.exit(1);
}, TOTAL_MS);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await cleanup(); process.exit(1); });

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// ---- the server: `--port 0` lets the OS pick a free loopback port; it prints which ------------
async function start_server() {
  let out = "";
  // One thread: on a loaded CI machine two threads that meet at a barrier after every op can
  // wait seconds for each other; one thread keeps each suggestion well inside the timeouts.
  server = spawn(xent, ["serve", "-m", model, "--host", "127.0.0.1", "--port", "0", "-t", "1"],
                 { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`xent serve did not start in 20 s:\n${out}`)), 20_000);
    const on_data = (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    server.stdout.on("data", on_data);
    server.stderr.on("data", on_data);
    server.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`xent serve exited (${code ?? sig}) before listening:\n${out}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; ++i) {
    try {
      const r = await fetch(base + "/health", { signal: AbortSignal.timeout(2000) });
      if (r.ok && (await r.json()).status === "ok") break;
    } catch (e) { /* not up yet */ }
    if (i >= 50) throw new Error("/health did not answer 200 within 10 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return base;
}

// ---- the tests ------------------------------------------------------------------------------
// Waits for the ghost text (the grey suggestion after the caret) to be non-empty and returns it.
async function ghost_text(page) {
  await page.waitForFunction(() => {
    const g = document.querySelector("#mirror .ghost");
    return g && g.textContent.length > 0;
  }, null, { timeout: 10_000 });
  return page.$eval("#mirror .ghost", (g) => g.textContent);
}

async function test_autocomplete(page, base) {
  await page.goto(base + "/", { timeout: 10_000 });
  await page.click("#text");

  // Suggestion appears as ghost text, Tab accepts it.
  const typed = "metformin 500 mg twice ";
  await page.keyboard.type(typed, { delay: 15 });
  const ghost = await ghost_text(page);
  log(`ghost after '${typed}': '${ghost}'`);
  check(ghost === "daily", `expected the ghost text 'daily' after '${typed}', got '${ghost}'`);
  const first = await page.$eval("#status .s", (e) => e.textContent);
  check(first.startsWith("daily"), `the first suggestion chip reads '${first}', expected 'daily ...'`);
  const latency = await page.$eval("#latency", (e) => e.textContent);
  log(`latency line: ${latency}`);
  check(/^\d+(\.\d+)? ms round trip \(model \d+(\.\d+)? ms;/.test(latency),
        `the latency line does not show the suggestion's latency: '${latency}'`);
  await page.screenshot({ path: join(shots, "xent-web-note.png") });
  await page.keyboard.press("Tab");
  const after_tab = await page.inputValue("#text");
  check(after_tab === typed + "daily", `after Tab the note is '${after_tab}', expected '${typed}daily'`);
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === "text", `Tab moved the focus out of the editor (to '${focused}')`);

  // Esc dismisses a suggestion without changing the text.
  await page.fill("#text", "");
  const typed2 = "oxygen saturation 95% on room ";
  await page.keyboard.type(typed2, { delay: 15 });
  const ghost2 = await ghost_text(page);
  log(`ghost after '${typed2}': '${ghost2}'`);
  check(ghost2 === "air", `expected the ghost text 'air' after '${typed2}', got '${ghost2}'`);
  await page.keyboard.press("Escape");
  const ghost_after_esc = await page.$eval("#mirror .ghost", (g) => g.textContent);
  check(ghost_after_esc === "", `Esc left the ghost text '${ghost_after_esc}'`);
  const after_esc = await page.inputValue("#text");
  check(after_esc === typed2, `Esc changed the note to '${after_esc}'`);
}

// Three words per suggestion: the ghost is a phrase; Ctrl+Right inserts its first word and
// leaves the rest as the ghost without asking the server again; Tab inserts the rest, which
// uses the ghost up and asks for the next suggestion.
async function test_words(page, requests) {
  await page.fill("#text", "");
  await page.selectOption("#words", "3");
  await page.click("#text");
  const typed = "HISTORY OF PRESENT ILLNESS: ";
  await page.keyboard.type(typed, { delay: 15 });
  const ghost = await ghost_text(page);
  log(`ghost after '${typed}' (3 words): '${ghost}'`);
  check(ghost === "The patient is", `expected the ghost text 'The patient is' after '${typed}', got '${ghost}'`);
  const last = requests[requests.length - 1];
  check(last && last.max_words === 3 && last.text === typed,
        `the last autocomplete request was ${JSON.stringify(last)}, expected max_words 3 and the typed text`);
  const n_before = requests.length;

  await page.keyboard.press("Control+ArrowRight");
  const after_word = await page.inputValue("#text");
  check(after_word === typed + "The", `after Ctrl+Right the note is '${after_word}', expected '${typed}The'`);
  const rest = await page.$eval("#mirror .ghost", (g) => g.textContent);
  check(rest === " patient is", `after Ctrl+Right the ghost text is '${rest}', expected ' patient is'`);
  const chips = await page.$$eval("#status .s", (els) => els.map((e) => e.firstChild.textContent.trim()));
  check(chips.length === 1 && chips[0] === "patient is", `after Ctrl+Right the suggestions read ${JSON.stringify(chips)}`);
  const caret = await page.$eval("#text", (t) => [t.selectionStart, t.selectionEnd, t.value.length]);
  check(caret[0] === caret[2] && caret[1] === caret[2], `after Ctrl+Right the caret is at ${caret}, not the end`);
  await page.waitForTimeout(300);
  check(requests.length === n_before,
        `Ctrl+Right asked the server again (${requests.length - n_before} request(s)) while ghost text was left`);

  await page.keyboard.press("Tab");
  const after_tab = await page.inputValue("#text");
  check(after_tab === typed + "The patient is", `after Tab the note is '${after_tab}', expected '${typed}The patient is'`);
  for (const t0 = Date.now(); requests.length === n_before && Date.now() - t0 < 5_000;) await page.waitForTimeout(50);
  await page.waitForTimeout(300);  // time for a second request, which would be one too many
  check(requests.length === n_before + 1,
        `after the ghost was used up ${requests.length - n_before} request(s) followed, expected 1`);
  check(requests[requests.length - 1].text === typed + "The patient is",
        `the request after Tab was for '${requests[requests.length - 1].text}'`);
  await page.screenshot({ path: join(shots, "xent-web-words.png") });
  await page.selectOption("#words", "1");
}

async function test_chat(page) {
  await page.click("#tab-chat");
  check(await page.isVisible("#chat-input"), "the chat tab did not open");
  check(!(await page.isVisible("#text")), "the note editor is still shown on the chat tab");
  await page.fill("#max-tokens", "12");
  await page.fill("#temperature", "0");
  await page.click("#chat-input");
  const message = "Summarise: chest pain, troponin negative.";
  await page.keyboard.type(message);
  await page.keyboard.press("Enter");
  // The reply is streamed; the Send button comes back when the stream has ended.
  await page.waitForFunction(() => document.querySelectorAll("#log .msg").length === 2 &&
                                   !document.getElementById("send").disabled, null, { timeout: 20_000 });
  const msgs = await page.$$eval("#log .msg", (els) => els.map((e) => ({
    label: e.firstChild.textContent, body: e.lastChild.textContent, error: !!e.querySelector(".error") })));
  log(`chat: ${JSON.stringify(msgs)}`);
  check(msgs[0].label === "user" && msgs[0].body === message, `the user's message shows as ${JSON.stringify(msgs[0])}`);
  check(!msgs[1].error, `the reply is an error: ${msgs[1].body}`);
  check(msgs[1].body.trim().length > 0, "the assistant's reply is empty");
  check(/^assistant · \d+(\.\d+)? tok\/s$/.test(msgs[1].label), `the reply's label shows no speed: '${msgs[1].label}'`);
  check((await page.inputValue("#chat-input")) === "", "the input was not cleared after sending");
  await page.screenshot({ path: join(shots, "xent-web-chat.png") });
}

let failed = 0;
try {
  const base = await start_server();
  log(`server at ${base}`);
  profile = mkdtempSync(join(tmpdir(), "xent-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  log(`chromium ${context.browser() ? context.browser().version() : ""} started`);
  context.setDefaultTimeout(10_000);
  // The page must be self-contained: any request off the server's own origin is a failure
  // (and is not let out).
  const foreign = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base + "/")) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  const page_errors = [];
  page.on("pageerror", (e) => page_errors.push(String(e)));
  // The bodies of the page's autocomplete requests, in order.
  const requests = [];
  page.on("request", (r) => {
    if (!r.url().endsWith("/v1/autocomplete")) return;
    try { requests.push(JSON.parse(r.postData())); } catch (e) { requests.push({ unreadable: String(e) }); }
  });

  for (const [name, fn] of [["autocomplete: type, ghost text, Tab, Esc", () => test_autocomplete(page, base)],
                            ["autocomplete: 3 words, Ctrl+Right takes one, Tab the rest", () => test_words(page, requests)],
                            ["chat: one turn", () => test_chat(page)]]) {
    const t0 = Date.now();
    try {
      await fn();
      log(`PASS ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      ++failed;
      console.error(`FAIL ${name}: ${e.message}`);
      await page.screenshot({ path: join(shots, "xent-web-failure.png") }).catch(() => {});
    }
  }
  if (foreign.length) { ++failed; console.error(`FAIL: the page asked for other origins: ${foreign.join(", ")}`); }
  if (page_errors.length) { ++failed; console.error(`FAIL: errors in the page: ${page_errors.join("; ")}`); }
} catch (e) {
  ++failed;
  console.error(`FAIL: ${e.message}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
log(failed ? `${failed} failure(s)` : "all passed");
process.exit(failed ? 1 : 0);
