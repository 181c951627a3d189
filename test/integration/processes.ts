// Child processes for the suites that drive real executables (the runnel CLI, kcat, Python
// clients): one that runs to its end under a deadline, and one that runs in the background until
// the test stops it. Both are killed on their deadline, so a client that hangs fails its test
// instead of the whole run.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to standard input, which is then closed (empty when absent). */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const TAIL_CHARS = 2000;

/** Runs `command` to its end and collects its output; rejects (after SIGKILL) when it outlives `timeoutMs`. */
export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout.slice(-TAIL_CHARS)}\nstderr: ${stderr.slice(-TAIL_CHARS)}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A process left running while a test does other things; `stop()` ends it and gives its output. */
export class BackgroundProcess {
  private stdoutText = '';
  private stderrText = '';
  private readonly closed: Promise<ProcessResult>;
  private readonly child: ChildProcess;
  private readonly deadline: NodeJS.Timeout;

  /** Starts `command`; it is SIGKILLed after `maxLifetimeMs` if nothing stopped it before. */
  constructor(readonly command: string, readonly args: readonly string[], maxLifetimeMs: number, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdoutText += chunk.toString('utf8')));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString('utf8')));
    this.closed = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.stderrText += `\n${error.message}`;
        resolve({ code: null, signal: null, stdout: this.stdoutText, stderr: this.stderrText });
      });
      this.child.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdoutText, stderr: this.stderrText }));
    });
    this.deadline = setTimeout(() => this.child.kill('SIGKILL'), maxLifetimeMs);
    void this.closed.then(() => clearTimeout(this.deadline));
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Sends `signal` (a clean stop by default), waits for the exit, SIGKILLs after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<ProcessResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const escalate = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.closed;
    } finally {
      clearTimeout(escalate);
    }
  }

  /** Resolves when the process has ended on its own (or was stopped). */
  exited(): Promise<ProcessResult> {
    return this.closed;
  }
}
