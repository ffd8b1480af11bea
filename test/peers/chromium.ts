/**
 * A real browser for the walkthrough tests: Debian's `chromium` package, driven over the DevTools
 * protocol by puppeteer-core (which downloads nothing). ensureChromium() installs the package when
 * missing (root only); startChromium() runs one headless with a fresh profile directory, removed on
 * close.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { PeerUnavailableError } from './peer-unavailable.js';
import { aptInstall } from './apt.js';

const PEER = 'chromium';
const EXECUTABLE = '/usr/bin/chromium';

function installed(): boolean {
  if (!existsSync(EXECUTABLE)) return false;
  try {
    execFileSync(EXECUTABLE, ['--version'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

export async function ensureChromium(): Promise<void> {
  if (installed()) return;
  await aptInstall(PEER, ['chromium'], { recommends: true, missing: `${EXECUTABLE} missing` });
  if (!installed()) throw new PeerUnavailableError(PEER, `installed the package but ${EXECUTABLE} does not run`);
}

export interface ChromiumPeer {
  browser: Browser;
  close(): Promise<void>;
}

/** A headless chromium with its own throw-away profile: no cookies or cache cross between runs. */
export async function startChromium(): Promise<ChromiumPeer> {
  await ensureChromium();
  const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  const browser = await puppeteer.launch({
    executablePath: EXECUTABLE,
    headless: true,
    userDataDir: profile,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
