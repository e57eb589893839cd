// Opens a page in Debian's chromium (never a downloaded browser) and prints, as one JSON line,
// the value the page's script leaves in `window.cplResult`.
// Usage: node open_page.mjs URL
import { chromium } from "playwright-core";

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"], // the tests run as root, where chromium's sandbox cannot start
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  const result = await page.waitForFunction(() => window.cplResult, null, { timeout: 15000 });
  console.log(JSON.stringify(await result.jsonValue()));
} finally {
  await browser.close();
}
