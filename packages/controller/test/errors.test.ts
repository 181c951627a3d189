import { describe, expect, it } from 'vitest';
import { ERRORS } from '@runnel/common';
import { CONTROLLER_ERRORS, controllerErrorCode } from '../src/index.js';

describe('controller error codes', () => {
  it("agree with @runnel/common's table for every name both list", () => {
    let shared = 0;
    for (const [name, spec] of Object.entries(CONTROLLER_ERRORS)) {
      const common = (ERRORS as Record<string, { code: number }>)[name];
      if (common === undefined) continue;
      shared += 1;
      expect({ name, code: spec.code }).toEqual({ name, code: common.code });
    }
    expect(shared).toBeGreaterThanOrEqual(10);
  });

  it("use Kafka's codes for the controller-only errors", () => {
    expect(controllerErrorCode('STALE_BROKER_EPOCH')).toBe(77);
    expect(controllerErrorCode('INVALID_UPDATE_VERSION')).toBe(95);
    expect(controllerErrorCode('UNKNOWN_TOPIC_ID')).toBe(100);
    expect(controllerErrorCode('DUPLICATE_BROKER_REGISTRATION')).toBe(101);
    expect(controllerErrorCode('INELIGIBLE_REPLICA')).toBe(107);
    expect(controllerErrorCode('NEW_LEADER_ELECTED')).toBe(108);
    const codes = Object.values(CONTROLLER_ERRORS).map((spec) => spec.code);
    expect(new Set(codes).size).toBe(codes.length);
  });
});
