import { describe, expect, it } from 'vitest';
import { BrokerConfig, ConfigError, errorCode, errorName, isRetriable, parseProperties, withTopicOverrides, RunnelError } from '../src/index.js';

describe('server.properties', () => {
  it('parses key=value, key: value, comments and continuations', () => {
    const values = parseProperties('# comment\n! also\nnode.id=3\nlog.dirs : /tmp/a\nlisteners=GRPC://127.0.0.1:1,\\\n  HTTP://127.0.0.1:2\n\n');
    expect(values).toEqual({ 'node.id': '3', 'log.dirs': '/tmp/a', 'listeners': 'GRPC://127.0.0.1:1,HTTP://127.0.0.1:2' });
  });

  it('refuses a key set twice', () => {
    expect(() => parseProperties('a=1\na=2', 'x.properties')).toThrow(/x.properties:2: 'a' is set twice/);
  });

  it('names an unknown key and suggests the close one', () => {
    expect(() => BrokerConfig.from({ file: { 'num.partition': '3' } })).toThrow(/unknown config key 'num.partition' \(did you mean 'num.partitions'\?\)/);
  });

  it('names a bad value and what was expected', () => {
    expect(() => BrokerConfig.from({ file: { 'num.partitions': 'three' } })).toThrow(/invalid value 'three' for 'num.partitions': expected an integer/);
    expect(() => BrokerConfig.from({ file: { 'num.partitions': '0' } })).toThrow(/at least 1/);
    expect(() => BrokerConfig.from({ file: { 'delete.topic.enable': 'yes' } })).toThrow(/true or false/);
    expect(() => BrokerConfig.from({ file: { listeners: 'GRPC://127.0.0.1' } })).toThrow(ConfigError);
    expect(() => BrokerConfig.from({ file: { listeners: 'HTTP://127.0.0.1:1' } })).toThrow(/GRPC listener is required/);
  });

  it('explains that ZooKeeper is not used', () => {
    expect(() => BrokerConfig.from({ file: { 'zookeeper.connect': 'localhost:2181' } })).toThrow(/Raft controller/);
  });

  it('layers file < environment < --set', () => {
    const config = BrokerConfig.from({
      file: { 'num.partitions': '2', 'log.retention.hours': '1' },
      env: { RUNNEL_NUM_PARTITIONS: '3', RUNNEL_LOG_RETENTION_BYTES: '1000' },
      overrides: { 'num.partitions': '4' },
    });
    expect(config.int('num.partitions')).toBe(4);
    expect(config.logSettings().retentionBytes).toBe(1000);
    expect(config.logSettings().retentionMs).toBe(3_600_000);
  });

  it('resolves retention from ms over minutes over hours, -1 meaning forever', () => {
    expect(BrokerConfig.from({ file: { 'log.retention.minutes': '2' } }).logSettings().retentionMs).toBe(120_000);
    expect(BrokerConfig.from({ file: { 'log.retention.ms': '5', 'log.retention.minutes': '2' } }).logSettings().retentionMs).toBe(5);
    expect(BrokerConfig.from({ file: { 'log.retention.hours': '-1' } }).logSettings().retentionMs).toBe(-1);
    expect(BrokerConfig.from({ file: { 'log.flush.interval.messages': '9223372036854775807' } }).logSettings().flushMessages).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('applies topic overrides and rejects unknown topic keys', () => {
    const defaults = BrokerConfig.from().logSettings();
    const settings = withTopicOverrides(defaults, { 'retention.ms': '1000', 'segment.bytes': '4096' });
    expect(settings.retentionMs).toBe(1000);
    expect(settings.segmentBytes).toBe(4096);
    expect(settings.flushMessages).toBe(defaults.flushMessages);
    expect(() => withTopicOverrides(defaults, { 'retention.msec': '1' })).toThrow(/unknown config key 'retention.msec'/);
    expect(() => withTopicOverrides(defaults, { 'cleanup.policy': 'compact' })).toThrow(/expected one of delete/);
  });
});

describe('error codes', () => {
  it('uses Kafka numbers and retriability', () => {
    expect(errorCode('NOT_LEADER_OR_FOLLOWER')).toBe(6);
    expect(errorCode('CORRUPT_MESSAGE')).toBe(2);
    expect(errorName(36)).toBe('TOPIC_ALREADY_EXISTS');
    expect(errorName(9999)).toBe('UNKNOWN_ERROR_9999');
    expect(isRetriable(6)).toBe(true);
    expect(isRetriable(10)).toBe(false);
    const error = RunnelError.fromCode(3, 'topic x');
    expect(error.errorName).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(error.message).toBe('UNKNOWN_TOPIC_OR_PARTITION: topic x');
  });
});
