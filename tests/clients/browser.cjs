// The status page in headless Chromium (Debian's, driven by playwright-core over CDP), as an
// on-call engineer uses it: a wrong login gets 401 and no data; the right one shows the runs
// table with the snapshot's nightly run; the chart draws; a lineage link opens the model; a CSV
// download equals `macrolake sql`'s CSV of the same table. A screenshot of each page goes to
// MACROLAKE_SHOTS (target/web-screenshots in CI).
//
// Env: MACROLAKE_WEB (https://127.0.0.1:PORT/), MACROLAKE_WEB_PASSWORD (user bi),
// MACROLAKE_REF_CSV (`macrolake sql --format csv "select * from marts.liquidity_vs_risk order by
// date"`), MACROLAKE_SHOTS (folder).
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const base = process.env.MACROLAKE_WEB;
const password = process.env.MACROLAKE_WEB_PASSWORD;
const shots = process.env.MACROLAKE_SHOTS;
const refCsv = process.env.MACROLAKE_REF_CSV;

function check(ok, what) {
  if (!ok) throw new Error(`browser: ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

(async () => {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // The flags keep Chromium off the network (no component updates, sync or lookups);
    // playwright gives it a new empty profile.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    // The server's certificate is self-signed for this run; the drivers' tests verify it.
    const context = await browser.newContext({
      ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 900 },
    });
    const page = await context.newPage();

    // Not logged in: the login form, nothing else.
    let response = await page.goto(base);
    check(page.url().startsWith(`${base}login`), `not sent to the login form: ${page.url()}`);
    check(await page.locator('#runs').count() === 0, 'runs shown before a login');
    await shot(page, '1-login');

    // A wrong password: 401 and the form again.
    await page.fill('input[name=user]', 'bi');
    await page.fill('input[name=password]', 'not the password');
    [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
      page.click('button[type=submit]'),
    ]);
    check(response.status() === 401, `wrong login answered ${response.status()}`);
    await page.waitForSelector('#login-error');
    check(await page.locator('#runs, #freshness, svg').count() === 0, 'data after a wrong login');
    await shot(page, '2-login-refused');

    // The right one: the runs table with the snapshot's nightly job, all steps ok.
    await page.fill('input[name=user]', 'bi');
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('#runs');
    const nightly = page.locator('#runs tbody tr')
      .filter({ has: page.locator('td:first-child a', { hasText: /^nightly$/ }) }).first();
    check(await nightly.count() === 1, 'no nightly run in the runs table');
    check((await nightly.locator('td.ok').count()) === 1, 'the nightly run is not ok');
    await shot(page, '3-runs');

    // The run's page: its three steps.
    await nightly.locator('a').first().click();
    await page.waitForSelector('#steps');
    const steps = await page.locator('#steps tbody tr').count();
    check(steps === 4, `nightly run page: ${steps} rows (the run and its 3 steps expected)`);
    await shot(page, '4-run');

    // Freshness.
    await page.click('header a[href="/freshness"]');
    await page.waitForSelector('#freshness');
    check(await page.locator('#freshness td', { hasText: 'marts.liquidity_vs_risk' }).count() === 1,
      'freshness lacks the mart');
    await shot(page, '5-freshness');

    // The chart, for a range chosen in the form.
    await page.click('header a[href="/product"]');
    await page.waitForSelector('#chart svg');
    await page.fill('input[name=from]', '2025-06-01');
    await Promise.all([page.waitForNavigation(), page.click('#range button')]);
    await page.waitForSelector('#chart svg');
    const caption = await page.locator('#chart figcaption').innerText();
    check(caption.startsWith('2025-06-01 to '), `chart range: ${caption}`);
    const box = await page.locator('#chart svg').boundingBox();
    check(box && box.width > 600 && box.height > 200, `chart size ${JSON.stringify(box)}`);
    check(await page.locator('#newest-rows tbody tr').count() === 30, 'not 30 newest rows');
    await shot(page, '6-product');

    // Lineage: follow the product's link, see its columns and tests.
    await page.click('header a[href="/lineage"]');
    await page.waitForSelector('#lineage-graph');
    await shot(page, '7-lineage');
    await Promise.all([
      page.waitForNavigation(),
      page.click('#models a[href="/lineage/marts.liquidity_vs_risk"]'),
    ]);
    check((await page.locator('h1').innerText()) === 'marts.liquidity_vs_risk', 'model page title');
    check(await page.locator('#columns td', { hasText: 'net_liquidity_musd' }).count() >= 1,
      'model columns');
    check((await page.locator('#tests').innerText()).includes('freshness(date, 14)'), 'model tests');
    await shot(page, '8-model');

    // A CSV download equals `macrolake sql`'s CSV.
    await page.click('header a[href="/downloads"]');
    await page.waitForSelector('#downloads');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('a[href="/download/marts.liquidity_vs_risk.csv"]'),
    ]);
    check(download.suggestedFilename() === 'marts.liquidity_vs_risk.csv',
      `download name ${download.suggestedFilename()}`);
    const saved = path.join(shots, 'marts.liquidity_vs_risk.csv');
    await download.saveAs(saved);
    const got = fs.readFileSync(saved, 'utf8');
    const want = fs.readFileSync(refCsv, 'utf8');
    check(got.split('\n').length > 1000, `download has ${got.split('\n').length} lines`);
    check(got === want, 'the downloaded CSV differs from `macrolake sql`\'s');
    await shot(page, '9-downloads');

    console.log(`browser: login refused (401) and accepted, runs, run, freshness, chart, lineage, `
      + `model page, CSV download (${got.split('\n').length - 2} rows) equal to macrolake sql; `
      + `screenshots in ${shots}`);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
