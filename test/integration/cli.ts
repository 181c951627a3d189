// Runs the real `runnel` executable, as a user would from the repository root.
import { RUNNEL_BIN } from '@runnel/testkit';
import { runProcess } from './processes.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runCli(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const { code, stdout, stderr } = await runProcess(process.execPath, [RUNNEL_BIN, ...args], options);
  return { code, stdout, stderr };
}
