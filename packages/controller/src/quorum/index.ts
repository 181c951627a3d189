// @runnel/controller/quorum: the controller on Raft — MetadataStateMachine (the metadata log as a
// RaftHost state machine, with image snapshots) and QuorumController (ControllerLogic on a RaftHost:
// the active controller, its timers and requests). Kept apart from the pure core, which loads no
// gRPC or LevelDB.
export {
  MetadataStateMachine,
  METADATA_SNAPSHOT_VERSION,
  encodeRecordBatch,
  decodeRecordBatch,
  encodeImageSnapshot,
  decodeImageSnapshot,
  imageToSnapshotRecords,
  type ImageListener,
} from './stateMachine.js';
export {
  QuorumController,
  NotControllerError,
  systemClock,
  DEFAULT_SESSION_CHECK_INTERVAL_MS,
  DEFAULT_LEADER_IMBALANCE_CHECK_INTERVAL_MS,
  type QuorumClock,
  type QuorumControllerOptions,
  type RegisterBrokerResult,
  type MetadataOffset,
  type QuorumDescription,
} from './quorumController.js';
export {
  ControllerService,
  ControllerClient,
  ControllerUnavailableError,
  InvalidRequestError,
  serveController,
  errorToFields,
  applyMetadataUpdate,
  type ControllerServiceOptions,
  type ControllerClientOptions,
  type ControllerErrorFields,
} from './controllerService.js';
// Raised by QuorumController.start() when its member may not start a new metadata log.
export { RaftLogMissingError } from '@runnel/raft/host';
