// A broken broker invariant ends the process (exit status 1, the violation on the log), even when it
// happens inside a request whose error would otherwise be answered as UNKNOWN_SERVER_ERROR.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));

describe('InvariantViolation', () => {
  it('stops the process from inside a request\'s error handling', () => {
    const script = `
      const { errorResult } = await import(${JSON.stringify(`${dist}errorResult.js`)});
      const { InvariantViolation } = await import(${JSON.stringify(`${dist}invariant.js`)});
      const { createLogger } = await import('@runnel/common');
      const logger = createLogger({ name: 'test', level: 'info' });
      const answer = errorResult(new InvariantViolation('the high watermark would move back'), logger);
      console.log('answered', answer.errorCode);
      setTimeout(() => console.log('still serving'), 200);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8', timeout: 20_000 });
    expect(child.status).toBe(1);
    expect(child.stdout).toContain('answered -1');
    expect(child.stdout).not.toContain('still serving');
    expect(`${child.stdout}${child.stderr}`).toContain('invariant: the high watermark would move back');
  });
});
