/**
 * A real SMTP server (Debian's `python3-aiosmtpd`) on a free loopback port, for the mail tests.
 * ensureAiosmtpd() installs the package when missing (root only); SmtpServer.start() runs one
 * whose Mailbox handler writes every message it accepts into a Maildir the test reads, and can
 * stop it and start it again on the same port (an outage).
 *
 * Debian's module is only importable by Debian's interpreter: the `python3` first on PATH may be
 * another one (pyenv, a virtualenv) without it, so the server always runs under /usr/bin/python3.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, portAccepts } from '../support/free-port.js';
import { aptInstall } from './apt.js';
import { PeerUnavailableError } from './peer-unavailable.js';

const PEER = 'aiosmtpd';
const PYTHON = '/usr/bin/python3';
const PACKAGE = 'python3-aiosmtpd';

function installed(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import aiosmtpd.handlers'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function ensureAiosmtpd(): Promise<void> {
  if (installed()) return;
  await aptInstall(PEER, [PACKAGE], { missing: `not importable by ${PYTHON}` });
  if (!installed()) throw new PeerUnavailableError(PEER, `installed ${PACKAGE} but ${PYTHON} cannot import aiosmtpd`);
}

/** A received message as Python's own `email` package reads it: a parser independent of the sender's. */
export interface ParsedMail {
  fromName: string;
  fromAddress: string;
  to: string;
  subject: string;
  messageId: string;
  contentType: string;
  text: string | null;
  html: string | null;
}

const PARSE = `
import email, email.policy, json, sys
m = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.default)
def body(kind):
    part = m.get_body(preferencelist=(kind,))
    return part.get_content() if part is not None else None
sender = m["From"].addresses[0]
print(json.dumps({"fromName": sender.display_name, "fromAddress": sender.addr_spec, "to": str(m["To"]),
  "subject": str(m["Subject"]), "messageId": str(m["Message-ID"]), "contentType": m.get_content_type(),
  "text": body("plain"), "html": body("html")}))
`;

export function parseMail(raw: string): ParsedMail {
  return JSON.parse(execFileSync(PYTHON, ['-c', PARSE], { input: raw, encoding: 'utf8' })) as ParsedMail;
}

export class SmtpServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    /** The Maildir the server delivers to (`new/` holds one file per accepted message); it creates it, as long as it does not exist yet. */
    readonly maildir: string,
  ) {}

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<SmtpServer> {
    await ensureAiosmtpd();
    const server = new SmtpServer(port ?? (await freePort()), join(mkdtempSync(join(tmpdir(), 'smtp-peer-')), 'maildir'));
    await server.restart();
    return server;
  }

  /** (Re)starts on the same port and Maildir. */
  async restart(): Promise<void> {
    if (this.proc) throw new Error('aiosmtpd is running');
    const proc = spawn(PYTHON, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${this.port}`, '-c', 'aiosmtpd.handlers.Mailbox', this.maildir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    const state = { exited: false };
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    proc.once('exit', () => {
      state.exited = true;
      if (this.proc === proc) this.proc = undefined;
    });
    for (let i = 0; i < 400; i++) {
      if (state.exited)
        throw new PeerUnavailableError(PEER, `exited at start on port ${this.port}: ${stderr.trim().split('\n').slice(-2).join(' | ')}`);
      if (await portAccepts(this.port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new PeerUnavailableError(PEER, `did not accept connections on port ${this.port}`);
  }

  /** Every message delivered so far, as raw RFC 822 text (Maildir `new/`, in no particular order). */
  messages(): string[] {
    let names: string[];
    try {
      names = readdirSync(join(this.maildir, 'new'));
    } catch {
      return [];
    }
    return names.map((name) => readFileSync(join(this.maildir, 'new', name), 'utf8'));
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** Stops it and removes its Maildir. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(dirname(this.maildir), { recursive: true, force: true });
  }
}
