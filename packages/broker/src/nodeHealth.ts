// Whether a node is ready to serve (GET /readyz) and what it is doing (GET /v1/broker). The rules
// are a pure function of a snapshot of the node's state, so each one is tested on its own; Node
// gathers the snapshot from its roles when asked.
//
// Ready means: a broker has recovered its logs, is registered, unfenced, holds its heartbeat lease,
// has applied the metadata the controller had committed a session timeout ago, and its log
// directory is online with free space above log.dir.min.free.bytes; a controller-only node knows a
// Raft leader. Every rule that fails is named.
import type { LogDirStatus } from './logManager.js';

/** A broker role's state, as readiness reads it. */
export interface BrokerHealthInput {
  /** Recovery of this broker's logs: done once the first metadata snapshot was applied (every assigned replica opened). */
  readonly recovery: RecoveryProgress;
  /** The broker epoch; -1 until registered. */
  readonly brokerEpoch: number;
  readonly fenced: boolean;
  /** Why this broker may not lead now (fenced, lease lapsed, catching up after either), or null. */
  readonly leadershipRevoked: string | null;
  /** Why the latest metadata could not be applied to the replicas, or null. */
  readonly metadataApplyFailure: string | null;
  /** The highest metadata offset applied here. */
  readonly metadataOffset: number;
  /** The controller's committed offset this broker has not applied, and for how long; null when caught up. */
  readonly metadataBehind: { readonly controllerOffset: number; readonly behindMs: number } | null;
  /** How long metadata may lag the controller before the broker is not ready (broker.session.timeout.ms). */
  readonly metadataLagMaxMs: number;
  /** Whether the broker is in controlled shutdown or stopping. */
  readonly shuttingDown: boolean;
  /** The log directory: offline (a write failed) or full fails readiness. */
  readonly logDir: LogDirStatus;
}

export interface RecoveryProgress {
  readonly done: boolean;
  /** Replicas opened (recovered) so far in the first metadata snapshot. */
  readonly opened: number;
  /** Replicas the first snapshot assigns here; null before it arrived. */
  readonly total: number | null;
}

export interface NodeHealthInput {
  /** The node has finished start() (every role started). */
  readonly started: boolean;
  readonly stopping: boolean;
  /** The controller role, when the node has one: the Raft leader it knows (-1 none). */
  readonly controller: { readonly leaderId: number } | null;
  readonly broker: BrokerHealthInput | null;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one line per failing rule; empty when ready. */
  readonly reasons: readonly string[];
}

export function brokerNotReadyReasons(broker: BrokerHealthInput): string[] {
  const reasons: string[] = [];
  const { recovery } = broker;
  if (!recovery.done) {
    reasons.push(recovery.total === null ? 'logs not recovered: waiting for the metadata that names this broker\'s replicas' : `logs recovering: ${recovery.opened} of ${recovery.total} replicas opened`);
  }
  if (broker.shuttingDown) reasons.push('broker shutting down');
  if (broker.brokerEpoch === -1) reasons.push('broker not registered with the controller');
  else if (broker.fenced) reasons.push('broker fenced by the controller');
  else if (broker.leadershipRevoked !== null) reasons.push(`broker may not lead: ${broker.leadershipRevoked}`);
  const logDir = broker.logDir;
  if (logDir.state === 'offline') {
    reasons.push(`log directory ${logDir.path} offline since a write failed (${logDir.offlineReason}); free space or fix the disk, then restart the broker`);
  } else if (logDir.state === 'full') {
    reasons.push(`log directory ${logDir.path} nearly full: ${mebibytes(logDir.freeBytes)} free, under log.dir.min.free.bytes (${mebibytes(logDir.minFreeBytes)}); no new replicas are placed here`);
  }
  if (broker.metadataApplyFailure !== null) reasons.push(`metadata not applied: ${broker.metadataApplyFailure}`);
  const behind = broker.metadataBehind;
  if (behind !== null && behind.behindMs > broker.metadataLagMaxMs) {
    reasons.push(`behind on the metadata: applied offset ${broker.metadataOffset}, the controller had ${behind.controllerOffset} ${Math.round(behind.behindMs)} ms ago`);
  }
  return reasons;
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function readiness(input: NodeHealthInput): Readiness {
  const reasons: string[] = [];
  if (input.stopping) reasons.push('node stopping');
  else if (!input.started) reasons.push('node starting');
  if (input.broker !== null) reasons.push(...brokerNotReadyReasons(input.broker));
  // A broker's own rules cover the controller it needs (registered, heartbeats answered); a
  // controller-only node is useful once the quorum it belongs to has a leader.
  else if (input.controller !== null && input.controller.leaderId === -1) reasons.push('no controller quorum leader known');
  return { ready: reasons.length === 0, reasons };
}

/**
 * How far behind the controller's committed metadata a broker is. Each answered heartbeat reports
 * the controller's offset; the oldest one not yet applied here is remembered with when it was seen,
 * so a broker that applies within milliseconds never looks behind, and one whose metadata stream
 * stalled does, from the moment the controller had moved on.
 */
export class MetadataLag {
  private target: { offset: number; sinceMs: number } | null = null;

  observe(controllerOffset: number, appliedOffset: number, nowMs: number): void {
    if (controllerOffset <= appliedOffset) return;
    if (this.target === null || this.target.offset <= appliedOffset) this.target = { offset: controllerOffset, sinceMs: nowMs };
  }

  behind(appliedOffset: number, nowMs: number): { controllerOffset: number; behindMs: number } | null {
    if (this.target === null) return null;
    if (appliedOffset >= this.target.offset) {
      this.target = null;
      return null;
    }
    return { controllerOffset: this.target.offset, behindMs: nowMs - this.target.sinceMs };
  }
}
