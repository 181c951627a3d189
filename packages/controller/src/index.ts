// @runnel/controller: the controller's deterministic core. Metadata records and the immutable
// MetadataImage they build, replica placement, the balancer, broker sessions, and ControllerLogic
// (the decisions of the active controller). No network, storage, timers or Raft internals.

export * from './errors.js';
export * from './random.js';
export * from './records.js';
export * from './image.js';
export * from './placement.js';
export * from './election.js';
export * from './balancer.js';
export * from './sessions.js';
export * from './topicConfig.js';
export * from './controllerLogic.js';
export * from './dynamicConfig.js';
