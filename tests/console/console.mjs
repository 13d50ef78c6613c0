// The console in a real browser: Playwright (playwright-core, pinned in package-lock.json)
// driving Debian's Chromium, headless, against a running sluice server. Run by
// tests/tests/console.rs, which starts the server and a webhook receiver, and asserts what
// this prints: one JSON object of observations on stdout (each step also fails here, with
// the step's name, when the page does not get there).
//
// Environment: SLUICE_URL, OWNER_TOKEN, READONLY_TOKEN, WEBHOOK_URL, SCREENSHOTS (a
// directory), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env("SLUICE_URL");
const owner = env("OWNER_TOKEN");
const readonly = env("READONLY_TOKEN");
const webhook = env("WEBHOOK_URL");
const shots = env("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

const seen = {};
let step = "start";
let current = null; // the page in use, for a screenshot when a step fails
const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, token) {
  await page.goto(`${base}/`);
  seen.redirectedTo ??= new URL(page.url()).pathname;
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("header nav").waitFor();
}

const form = (page, name) => page.getByRole("form", { name });

try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  current = page;
  page.setDefaultTimeout(15000);

  step = "sign in";
  await page.goto(`${base}/console`);
  await page.getByLabel("Token").waitFor();
  await shot(page, "sign-in");
  await signIn(page, owner);

  step = "create a source";
  await page.goto(`${base}/console#/sources`);
  const newSource = form(page, "New source");
  await newSource.getByLabel("Name").fill("Web shop");
  await newSource.getByRole("button", { name: "Create source" }).click();
  await page.waitForURL(/#\/sources\/[0-9a-f]+$/);
  const sourceId = page.url().split("/").pop();
  const writeKey = (await page.locator("code.write-key").first().textContent()).trim();
  seen.source = { id: sourceId, slug: await page.locator("p.muted").first().textContent(), writeKey };
  await shot(page, "source");

  step = "create a webhook destination, first without its url";
  await page.goto(`${base}/console#/destinations`);
  const newDestination = form(page, "New destination");
  await newDestination.getByLabel("Type").selectOption("webhook");
  await newDestination.getByLabel("Name", { exact: true }).fill("Orders hook");
  await newDestination.getByRole("button", { name: "Create destination" }).click();
  const urlError = newDestination.locator('.field[data-field="settings.url"] .field-error');
  await urlError.waitFor({ state: "visible" });
  seen.destinationFieldError = (await urlError.textContent()).trim();
  await shot(page, "destination-field-error");
  await newDestination.getByLabel("url").fill(webhook);
  await newDestination.getByRole("button", { name: "Create destination" }).click();
  await page.waitForURL(/#\/destinations\/[0-9a-f]+$/);
  const destinationId = page.url().split("/").pop();
  seen.destinationId = destinationId;
  // The destination's page renders after its fetches; leaving before that lets the late
  // render replace the next page (seen once: the functions page never appeared).
  await page.getByText("Delivery over the last hour").first().waitFor();

  step = "create a function";
  await page.goto(`${base}/console#/functions`);
  const newFunction = form(page, "New function");
  await newFunction.getByLabel("Name").fill("Review orders");
  await newFunction.getByRole("button", { name: "Create function" }).click();
  // The first JavaScript upload may wait for the engine component's compilation.
  await page.waitForURL(/#\/functions\/[0-9a-f]+$/, { timeout: 90000 });
  const functionId = page.url().split("/").pop();
  await page.locator("#editor .cm-content").waitFor();

  step = "a syntax error is marked at its line";
  const setCode = async (code) => {
    await page.locator("#editor .cm-content").click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(code);
  };
  await setCode(
    [
      "async function onTrack(event, settings) {",
      "  event.properties = event.properties || {};",
      "  event.properties.reviewed = = true;",
      '  console.log("reviewed", event.event);',
      "  return event;",
      "}",
    ].join("\n"),
  );
  await page.getByRole("button", { name: "Save (new version)" }).click();
  await page.locator("#code-status.error").waitFor();
  const marked = page.locator("#editor .cm-lintRange-error").first();
  await marked.waitFor();
  seen.syntaxError = {
    status: (await page.locator("#code-status").textContent()).trim(),
    // Which line (1-based) holds the marked range, and at which column it starts.
    markedLine: await page.evaluate(() => {
      const lines = [...document.querySelectorAll("#editor .cm-content .cm-line")];
      return lines.findIndex((l) => l.querySelector(".cm-lintRange-error")) + 1;
    }),
    markedText: (await marked.textContent()).trim(),
  };
  await shot(page, "function-syntax-error");

  step = "fixed, saved and tested on a sample event";
  await setCode(
    [
      "async function onTrack(event, settings) {",
      "  event.properties = event.properties || {};",
      "  event.properties.reviewed = true;",
      "  delete event.properties.email;",
      '  console.log("reviewed", event.event);',
      "  return event;",
      "}",
    ].join("\n"),
  );
  await page.getByRole("button", { name: "Save (new version)" }).click();
  await page.locator("#code-status.ok").waitFor();
  await page.waitForTimeout(500); // the editor's linter runs 300 ms after a change
  seen.savedStatus = (await page.locator("#code-status").textContent()).trim();
  seen.markersAfterFix = await page.locator("#editor .cm-lintRange-error").count();
  await page.getByRole("button", { name: "Run test" }).click();
  const outcome = page.locator("#test-result .outcome");
  await outcome.waitFor();
  seen.test = {
    outcome: await outcome.getAttribute("data-outcome"),
    fuel: (await page.locator("#test-result .fuel").textContent()).trim(),
    time: (await page.locator("#test-result .time").textContent()).trim(),
    changes: await page.locator("#test-result .diff tbody tr").evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent.trim())),
    ),
    logs: (await page.locator("#test-result pre.logs").textContent()).trim(),
  };
  await shot(page, "function-test");

  step = "deploy and attach";
  await page.getByRole("button", { name: "Deploy latest" }).click();
  await page.locator(".badge.ok", { hasText: "deployed" }).waitFor();
  const attach = form(page, "Attach");
  await attach.getByLabel("Attach to source").selectOption(sourceId);
  await attach.getByRole("button", { name: "Attach" }).click();
  await page.getByRole("button", { name: "Detach" }).waitFor();
  seen.attachedTo = await page.getByRole("button", { name: "Detach" }).count();
  await shot(page, "function");

  step = "events arrive live in the debugger";
  await page.goto(`${base}/console#/debugger/${sourceId}`);
  await page.locator(".live-status.ok").waitFor();
  const send = async (batch) => {
    const r = await fetch(`${base}/v1/batch`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Basic ${btoa(`${writeKey}:`)}` },
      body: JSON.stringify({ batch }),
    });
    if (r.status !== 200) throw new Error(`/v1/batch answered ${r.status}: ${await r.text()}`);
  };
  const tracks = ["Order Completed", "Checkout Started", "Product Viewed"].map((event, i) => ({
    type: "track",
    event,
    userId: `u-${i}`,
    messageId: `console-test-${i}`,
    properties: { email: "ada@example.com", total: i },
  }));
  await send(tracks);
  const rows = page.locator("#live-events details.event");
  const delivered = '[data-stage="deliver"][data-status="delivered"]';
  await page.waitForFunction(
    (sel) => [...document.querySelectorAll("#live-events details.event")].filter((r) => r.querySelector(sel)).length >= 3,
    delivered,
  );
  seen.debugger = await rows.evaluateAll((all) =>
    all.map((r) => ({
      name: r.querySelector(".name").textContent,
      stages: [...r.querySelectorAll(".chip")].map((c) => `${c.dataset.stage}:${c.dataset.status}`),
    })),
  );
  await rows.first().locator("summary").click();
  await shot(page, "debugger");

  step = "pause holds updates back, resume shows them; the filter narrows";
  await page.getByRole("button", { name: "Pause" }).click();
  await send([{ type: "track", event: "Paused Event", userId: "u-9", messageId: "console-test-paused" }]);
  await page.locator(".live-status.paused", { hasText: /[1-9]\d* updates waiting/ }).waitFor();
  seen.whilePaused = await rows.filter({ hasText: "Paused Event" }).count();
  await page.getByRole("button", { name: "Resume" }).click();
  await rows.filter({ hasText: "Paused Event" }).waitFor();
  seen.afterResume = await rows.filter({ hasText: "Paused Event" }).count();
  await page.getByLabel("Event name").fill("checkout");
  seen.filtered = await rows.evaluateAll((all) => all.filter((r) => !r.hidden).map((r) => r.querySelector(".name").textContent));

  step = "the destination's page: chart and failed events";
  await page.goto(`${base}/console#/destinations/${destinationId}`);
  await page.locator("svg.chart").waitFor();
  seen.deliveredTotal = (await page.locator('.total[data-series="delivered"]').textContent()).trim();
  seen.chartBars = await page.locator('svg.chart rect[data-series="delivered"]').count();
  await shot(page, "destination");

  step = "a tracking plan with a rule, connected to the source";
  await page.goto(`${base}/console#/tracking-plans`);
  await form(page, "New tracking plan").getByLabel("Name").fill("Checkout");
  await form(page, "New tracking plan").getByRole("button", { name: "Create plan" }).click();
  await page.waitForURL(/#\/tracking-plans\/[0-9a-f]+$/);
  const newRule = form(page, "New rule");
  await newRule.getByLabel("Event name (track rules)").fill("Order Completed");
  await newRule
    .getByLabel("JSON Schema")
    .fill(JSON.stringify({ type: "object", properties: { properties: { type: "object", required: ["orderId"] } } }));
  await newRule.getByRole("button", { name: "Add rule" }).click();
  await form(page, "Rule TRACK Order Completed").waitFor();
  await form(page, "Connect a source").getByRole("button", { name: "Connect" }).click();
  await page.getByRole("button", { name: "Disconnect" }).waitFor();
  await send([{ type: "track", event: "Order Completed", userId: "u-1", messageId: "console-test-violation", properties: {} }]);
  // Enforcement runs in the pipeline, a moment after the 200: look again, as a person would.
  for (let attempt = 0; attempt < 40 && !(await page.locator("table .chip.violations").count()); attempt++) {
    await page.waitForTimeout(250);
    await page.reload();
    await page.getByRole("heading", { name: "Recent violations" }).waitFor();
    await page.locator("table .chip.violations, p.muted:text('No violations')").first().waitFor();
  }
  seen.violations = await page.locator("table .chip.violations").count();
  await shot(page, "tracking-plan");

  step = "a warehouse with a sync report";
  await page.goto(`${base}/console#/warehouses`);
  const newWarehouse = form(page, "New warehouse");
  await newWarehouse.getByLabel("Type").selectOption("duckdb");
  await newWarehouse.getByLabel("Name", { exact: true }).fill("Analytics");
  await newWarehouse.getByRole("button", { name: "Create warehouse" }).click();
  await page.waitForURL(/#\/warehouses\/[0-9a-f]+$/);
  await form(page, "Connect a source").getByRole("button", { name: "Connect" }).click();
  await page.getByRole("button", { name: "Disconnect" }).waitFor();
  // Events reach a warehouse's staging once it is connected; a sync loads what is staged.
  // (A track event: the source's function has no onIdentify, so it would drop an identify.)
  await send([{ type: "track", event: "Plan Chosen", userId: "u-1", messageId: "console-test-warehouse", properties: { plan: "pro" } }]);
  for (let attempt = 0; attempt < 20; attempt++) {
    await page.waitForTimeout(500);
    await page.getByRole("button", { name: "Sync now" }).click();
    await page.locator("table .chip.success, p.muted:text('No syncs yet.')").first().waitFor({ timeout: 60000 });
    if (await page.locator("table .chip.success").count()) break;
  }
  seen.syncReports = await page.locator("table .chip.success").count();
  await shot(page, "warehouse");

  step = "the audit trail, filtered";
  await page.goto(`${base}/console#/audit`);
  await page.locator("table tbody tr").first().waitFor();
  seen.auditAll = await page.locator("table tbody tr").count();
  await form(page, "Filters").getByLabel("Kind").selectOption("function");
  await form(page, "Filters").getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(() =>
    [...document.querySelectorAll("table tbody tr")].every((r) => r.textContent.includes("function")),
  );
  seen.auditFunctionKinds = await page.locator("table tbody tr .badge").allTextContents();
  await shot(page, "audit");

  step = "the source's page with its destination and function";
  await page.goto(`${base}/console#/sources/${sourceId}`);
  await page.getByRole("link", { name: "Orders hook" }).waitFor();
  await shot(page, "source");

  step = "a read-only token cannot press what it may not do";
  const viewer = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const ro = await viewer.newPage();
  current = ro;
  ro.setDefaultTimeout(15000);
  await signIn(ro, readonly);
  await ro.goto(`${base}/console#/sources/${sourceId}`);
  await ro.getByRole("button", { name: "Add a write key" }).waitFor();
  const disabled = async (locator) => locator.isDisabled();
  seen.readOnly = {
    who: (await ro.locator("header .who").textContent()).trim(),
    addWriteKey: await disabled(ro.getByRole("button", { name: "Add a write key" })),
    deleteSource: await disabled(ro.getByRole("button", { name: "Delete" })),
    saveEnforcement: await disabled(ro.getByRole("button", { name: "Save enforcement" })),
  };
  await ro.goto(`${base}/console#/sources`);
  await form(ro, "New source").waitFor();
  seen.readOnly.createSource = await disabled(ro.getByRole("button", { name: "Create source" }));
  await ro.goto(`${base}/console#/functions/${functionId}`);
  await ro.locator("#editor .cm-content").waitFor();
  seen.readOnly.saveFunction = await disabled(ro.getByRole("button", { name: "Save (new version)" }));
  seen.readOnly.deploy = await disabled(ro.getByRole("button", { name: "Deploy latest" }));
  seen.readOnly.detach = await disabled(ro.getByRole("button", { name: "Detach" }));
  seen.readOnly.editorEditable = await ro.locator("#editor .cm-content").getAttribute("contenteditable");
  // Testing changes nothing, so the API lets a reader run it, and so does the console.
  seen.readOnly.runTest = await disabled(ro.getByRole("button", { name: "Run test" }));
  await shot(ro, "read-only-function");
  await ro.goto(`${base}/console#/destinations/${destinationId}`);
  await ro.locator("svg.chart").waitFor();
  seen.readOnly.disableDestination = await disabled(ro.getByRole("button", { name: "Disable" }));
  seen.readOnly.saveDestination = await disabled(ro.getByRole("button", { name: "Save settings" }));
  await viewer.close();
  current = page;

  step = "signing out forgets the token";
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Token").waitFor();
  seen.afterSignOut = await page.evaluate(() => sessionStorage.getItem("sluice.token"));
  await context.close();
  console.log(JSON.stringify(seen));
} catch (err) {
  console.error(`step "${step}" failed: ${err.stack ?? err}`);
  console.error(`seen so far: ${JSON.stringify(seen)}`);
  if (current) {
    await current.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
    console.error(`the page when it failed: ${join(shots, "failure.png")}\n${await current.locator("main").innerText().catch(() => "")}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
