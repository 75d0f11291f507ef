/**
 * A real headless Chromium for the dashboard tests: Debian's `chromium` package driven by
 * playwright-core. Fails (never skips) with a clear message when it is not installed.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `The dashboard tests need Chromium at ${chromiumPath}, and it is not there. Install Debian's package (sudo apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium binary; .ci/run installs it in CI.`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
