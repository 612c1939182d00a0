// Debian's Chromium, headless, driven by playwright-core: shared by the browser tests.
import fs from 'node:fs';
import { chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Launches Chromium, or says how to install it. */
export async function launchChromium() {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: run scripts/install-chromium.sh (or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    // As root on a machine without a network: no sandbox, and none of Chromium's own calls out.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
