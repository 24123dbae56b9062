import { existsSync } from 'node:fs';

/** Debian's chromium (apt-get install chromium); playwright-core never downloads a browser. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
  if (!found) {
    throw new Error(
      'the results-page tests need a Chromium: none at /usr/bin/chromium or /usr/bin/chromium-browser ' +
        '(or CHROMIUM_PATH). Install it with "apt-get install -y chromium" (npm test does where it is missing: test/install-prerequisites.sh).',
    );
  }
  return found;
}
