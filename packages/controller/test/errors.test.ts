import { describe, expect, it } from 'vitest';
import { ERRORS } from '@runnel/common';
import { CONTROLLER_ERRORS, apiError, controllerErrorCode } from '../src/index.js';

describe('controller error codes', () => {
  it("are @runnel/common's table", () => {
    expect(CONTROLLER_ERRORS).toBe(ERRORS);
  });

  it("use Kafka's codes for the controller's own errors", () => {
    expect(controllerErrorCode('NOT_CONTROLLER')).toBe(41);
    expect(controllerErrorCode('STALE_BROKER_EPOCH')).toBe(77);
    expect(controllerErrorCode('INVALID_UPDATE_VERSION')).toBe(95);
    expect(controllerErrorCode('UNKNOWN_TOPIC_ID')).toBe(100);
    expect(controllerErrorCode('DUPLICATE_BROKER_REGISTRATION')).toBe(101);
    expect(controllerErrorCode('INELIGIBLE_REPLICA')).toBe(107);
    expect(controllerErrorCode('NEW_LEADER_ELECTED')).toBe(108);
    // The message is the detail alone: the code is its own field, and readers print both.
    expect(apiError('INELIGIBLE_REPLICA', 'replica 2 is fenced')).toEqual({ errorCode: 107, errorMessage: 'replica 2 is fenced' });
    expect(apiError('TOPIC_ALREADY_EXISTS')).toEqual({ errorCode: 36, errorMessage: 'Topic with this name already exists' });
  });
});
