// Opens a keyrotor HTML report in headless Chromium and checks what a reader would see.
//   node check-report.cjs REPORT.html SCREENSHOT.png SECTION_ID...
// Prints one JSON document; exits 1 when the page logged an error, requested anything but
// itself, or a section (or one of its charts) is missing or not displayed.
'use strict';
const { chromium } = require('playwright-core');
const path = require('node:path');

async function main() {
  const [file, screenshot, ...sections] = process.argv.slice(2);
  if (!file || !screenshot || sections.length === 0) {
    console.error('usage: check-report.cjs REPORT.html SCREENSHOT.png SECTION_ID...');
    process.exit(2);
  }
  const url = 'file://' + path.resolve(file);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    page.on('request', (r) => {
      if (r.url() !== url) problems.push(`external request (the page must be self-contained): ${r.url()}`);
    });
    const response = await page.goto(url, { waitUntil: 'load' });
    if (!response || !response.ok()) problems.push(`load: ${response ? response.status() : 'no response'}`);
    const found = await page.evaluate((ids) => ids.map((id) => {
      const el = document.getElementById(id);
      if (!el) return { id, present: false };
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      const heading = el.querySelector('h2');
      const charts = [...el.querySelectorAll('svg')].map((svg) => {
        const b = svg.getBoundingClientRect();
        return { width: b.width, height: b.height, shapes: svg.querySelectorAll('rect,circle,line').length,
          title: (svg.querySelector('title') || {}).textContent || '' };
      });
      return { id, present: true, visible: box.width > 0 && box.height > 0 && style.display !== 'none' && style.visibility !== 'hidden',
        heading: heading ? heading.textContent : null, rows: el.querySelectorAll('tr').length, charts };
    }), sections);
    for (const s of found) {
      if (!s.present) { problems.push(`section #${s.id} is missing`); continue; }
      if (!s.visible) problems.push(`section #${s.id} is not displayed`);
      if (!s.heading) problems.push(`section #${s.id} has no heading`);
      for (const c of s.charts) {
        if (!(c.width > 0 && c.height > 0 && c.shapes > 0)) problems.push(`a chart in #${s.id} is empty: ${JSON.stringify(c)}`);
      }
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ url, title: await page.title(), sections: found, problems }, null, 2));
  } finally {
    await browser.close();
  }
  process.exit(problems.length ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
