// A real browser through the SSC analyst's day: sign in (at the OIDC provider, or with the
// development issuer's category picker when config.issuer is null), GraphiQL with the
// schema loaded, the SSC query, a reload and a shared link that keep the query, a subscription
// over graphql-transport-ws, logout; then a Supplier's sign-in and the same query.
// Driven by tests/test_browser_signin.py, which reads the JSON report this prints and asserts.
// Playwright here is playwright-core only, launching Debian's chromium: it downloads nothing.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const config = JSON.parse(process.env.CPL_BROWSER_CONFIG);
const site = config.site;
const report = { requests: [], blocked: [], consoleErrors: [], steps: {} };

function isLoopback(url) {
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

const context = await chromium.launchPersistentContext(config.userDataDir, {
  executablePath: config.executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1400, height: 860 },
});
context.setDefaultTimeout(20_000);

// Nothing leaves this machine: a request to anywhere but loopback is recorded and aborted.
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (url.startsWith("data:") || isLoopback(url)) return route.continue();
  report.blocked.push({ url, from: route.request().frame()?.url() ?? null });
  return route.abort();
});
context.on("request", (request) => {
  report.requests.push({
    url: request.url(),
    from: request.frame()?.url() ?? null,
    navigation: request.isNavigationRequest(),
  });
});

const page = await context.newPage();
page.on("console", (message) => {
  if (message.type() === "error") report.consoleErrors.push({ text: message.text(), at: page.url() });
});
page.on("pageerror", (error) => report.consoleErrors.push({ text: String(error), at: page.url() }));

async function editorText(selector) {
  return page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
}

// Type a query as a person would, then wait for GraphiQL to take it in (the address holds it,
// the editor knows its operation), so that "Run" sends this operation, not the last one.
async function setQuery(text) {
  await page.evaluate((t) => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(t), text);
  const name = (/^\s*(?:query|mutation|subscription)\s+(\w+)/.exec(text) || [])[1] ?? null;
  await page.waitForFunction(
    ([q, n]) => {
      const editor = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
      return new URL(location.href).searchParams.get("query") === q && editor.operationName === n;
    },
    [text, name],
  );
}

async function waitForGraphiQL() {
  await page.waitForSelector(".graphiql-query-editor .CodeMirror");
}

async function run() {
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(() => {
    const editor = document.querySelector(".graphiql-response .CodeMirror");
    return editor && editor.CodeMirror.getValue().trim().startsWith("{");
  });
  return editorText(".graphiql-response .CodeMirror");
}

async function signIn(sub) {
  const introspection = page.waitForResponse(
    (r) => r.url() === `${site}/graphql` && (r.request().postData() || "").includes("IntrospectionQuery"),
  );
  await page.goto(`${site}/graphql`);
  await page.click("#cpl-signin");
  if (config.issuer) {
    // At the identity provider: who signs in.
    await page.waitForURL((url) => url.href.startsWith(config.issuer));
    await page.fill("input[name=sub]", sub);
    await page.click("button[type=submit]:has-text('Authorize')");
  } else {
    // The development issuer's own page: which Party category to explore as.
    await page.waitForURL((url) => url.pathname === "/login");
    await page.waitForSelector(".cpl-categories");
    await page.screenshot({ path: screenshotPath("signin-development.png") });
    await page.click(`button[name=category][value=${sub}]`);
  }
  await page.waitForURL(`${site}/graphql`);
  await waitForGraphiQL();
  const answer = await introspection;
  return answer.status();
}

function screenshotPath(name) {
  mkdirSync(config.screenshotDir, { recursive: true });
  return `${config.screenshotDir}/${name}`;
}

try {
  // Signed out: the page explains, and offers the way in.
  await page.goto(`${site}/graphql`);
  await page.waitForSelector("#cpl-signin");
  report.steps.signedOutText = await page.textContent("#cpl-who");

  // 1. The SSC analyst signs in; GraphiQL loads its schema with the session.
  report.steps.sscIntrospectionStatus = await signIn(config.sscSub);
  report.steps.sscWho = await page.textContent("#cpl-who");
  await page.click("button[aria-label='Show Documentation Explorer']");
  await page.waitForSelector(".graphiql-doc-explorer");
  report.steps.docExplorer = await page.textContent(".graphiql-doc-explorer");
  await page.click("button[aria-label='Hide Documentation Explorer']");
  report.steps.sscResponse = await run();
  await page.screenshot({ path: screenshotPath("graphiql-ssc.png") });

  // Completion knows the schema: typing offers the fields.
  await setQuery("{ }");
  await page.evaluate(() => {
    const editor = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
    editor.focus();
    editor.setCursor({ line: 0, ch: 2 });
  });
  await page.keyboard.type("sscA");
  await page.waitForSelector(".CodeMirror-hints .CodeMirror-hint");
  report.steps.completion = await page.$$eval(".CodeMirror-hints .CodeMirror-hint", (items) =>
    items.map((item) => item.textContent),
  );
  await page.keyboard.press("Escape");

  // 2. An edited query is kept in the address: a reload and a shared link open it again.
  const edited = "query Kept { devices(first: 2) { nodes { modelName zigbeeChipsetVendor } } }";
  await setQuery(edited);
  await page.waitForFunction((q) => new URL(location.href).searchParams.get("query") === q, edited);
  report.steps.address = page.url();
  await page.reload();
  await waitForGraphiQL();
  report.steps.afterReload = await editorText(".graphiql-query-editor .CodeMirror");
  const shared = `${site}/graphql?query=${encodeURIComponent("query Shared { viewer { partyId } }")}`;
  await page.goto(shared);
  await waitForGraphiQL();
  report.steps.sharedLink = await editorText(".graphiql-query-editor .CodeMirror");

  // 3. A subscription from GraphiQL runs over graphql-transport-ws.
  const frames = [];
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => frames.push({ sent: String(f.payload) }));
    ws.on("framereceived", (f) => frames.push({ received: String(f.payload) }));
  });
  await setQuery(
    "subscription Watch { cplChanges { kind device { modelName zigbeeStackVersion } } }",
  );
  await page.click(".graphiql-execute-button");
  const acked = Date.now();
  while (!frames.some((f) => (f.received || "").includes("connection_ack")) && Date.now() - acked < 10_000) {
    await page.waitForTimeout(50);
  }
  // The server may not listen yet when the socket is acknowledged: change again until it tells.
  const delivered = () =>
    page.evaluate(() => {
      const editor = document.querySelector(".graphiql-response .CodeMirror");
      return Boolean(editor && editor.CodeMirror.getValue().includes("cplChanges"));
    });
  report.steps.mutationStatuses = [];
  for (let attempt = 0; attempt < 20 && !(await delivered()); attempt++) {
    const change = await fetch(`${site}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${config.writerToken}` },
      body: JSON.stringify({ query: config.mutation, variables: { version: `R23.${attempt}` } }),
    });
    report.steps.mutationStatuses.push(change.status);
    await page.waitForTimeout(500);
  }
  report.steps.subscriptionResponse = await editorText(".graphiql-response .CodeMirror");
  report.steps.socketFrames = frames;
  await page.click(".graphiql-execute-button"); // stop the subscription

  // 4. What the browser keeps: no token, no CSRF token, no SSC-only value.
  report.steps.localStorage = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  report.steps.sessionStorage = await page.evaluate(() => JSON.stringify({ ...sessionStorage }));
  report.steps.cookies = await context.cookies(site);

  // 5. Logout ends the session.
  await page.click("#cpl-logout");
  await page.waitForURL((url) => !url.href.startsWith(`${site}/graphql`));
  report.steps.afterLogout = (await context.request.get(`${site}/auth/session`)).status();
  report.steps.cookiesAfterLogout = await context.cookies(site);

  // 6. A Supplier signs in: the same query answers null for the SSC-only fields.
  report.steps.supplierIntrospectionStatus = await signIn(config.supplierSub);
  await setQuery(config.query);
  report.steps.supplierResponse = await run();
  await page.screenshot({ path: screenshotPath("graphiql-supplier.png") });
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
  report.failedAt = page.url();
  await page.screenshot({ path: screenshotPath("failure.png") }).catch(() => {});
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report));
