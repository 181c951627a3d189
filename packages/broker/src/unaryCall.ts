// One unary gRPC call on any of the broker's services: counted and timed per API, answered with
// the handler's response, and a handler that throws (a bug: handlers answer errors as Kafka codes)
// is logged and answered INTERNAL, so the node keeps serving.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@runnel/common';
import type { BrokerMetrics } from './metrics.js';

export function serveUnary<Request, Response>(
  api: string,
  call: grpc.ServerUnaryCall<Request, Response>,
  callback: grpc.sendUnaryData<Response>,
  handle: (request: Request) => Promise<Response>,
  metrics: BrokerMetrics,
  logger: Logger,
): void {
  const stopTimer = metrics.requestSeconds.startTimer({ api, listener: 'GRPC' });
  metrics.requests.inc({ api, listener: 'GRPC' });
  handle(call.request).then(
    (response) => {
      stopTimer();
      callback(null, response);
    },
    (error: unknown) => {
      stopTimer();
      logger.error({ err: error, api }, 'request failed');
      callback({ code: 13 /* INTERNAL */, details: `${api} failed: ${(error as Error)?.message ?? String(error)}` } as grpc.ServiceError, null);
    },
  );
}
