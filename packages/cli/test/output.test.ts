// The CLI's one error line: the Kafka code named once, whatever the message it wraps says.
import { describe, expect, it } from 'vitest';
import { RunnelError } from '@runnel/common';
import { errorLine } from '../src/output.js';

describe('errorLine', () => {
  it('names the code once, in front', () => {
    const error = RunnelError.fromCode(36, "cannot create topic 'demo': topic 'demo' already exists");
    expect(errorLine(error)).toBe("runnel: TOPIC_ALREADY_EXISTS: cannot create topic 'demo': topic 'demo' already exists");
  });

  it("drops the code where an older node's message repeats it", () => {
    const error = RunnelError.fromCode(36, "cannot create topic 'demo': TOPIC_ALREADY_EXISTS: topic 'demo' already exists");
    expect(errorLine(error)).toBe("runnel: TOPIC_ALREADY_EXISTS: cannot create topic 'demo': topic 'demo' already exists");
  });

  it('keeps other codes a message names', () => {
    const error = new RunnelError('NETWORK_EXCEPTION', 'Metadata to 127.0.0.1:1: gRPC UNAVAILABLE: No connection established');
    expect(errorLine(error)).toBe('runnel: NETWORK_EXCEPTION: Metadata to 127.0.0.1:1: gRPC UNAVAILABLE: No connection established');
  });

  it('prints an error without a code as its message', () => {
    expect(errorLine(new Error('cannot read config file x.properties: ENOENT'))).toBe('runnel: cannot read config file x.properties: ENOENT');
    expect(errorLine('plain')).toBe('runnel: plain');
  });
});
