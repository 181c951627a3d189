// @runnel/storage: segments, indexes, recovery and retention of a partition's log on one disk.
export {
  PartitionLog,
  READ_BYTES_MAX,
  APPEND_BATCHES_MAX,
  type AppendResult,
  type ReadResult,
  type AppendOptions,
  type ReadOptions,
  type CleanOptions,
  type CleanResult,
  type CleanableSection,
  type PartitionLogOptions,
} from './partitionLog.js';
export { LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochCache, formatCheckpoint, parseCheckpoint, type EpochEntry } from './leaderEpochCache.js';
export { CLEAN_SHUTDOWN_FILE, segmentFileName, parseSegmentFileName, AssertionError, replaceFile, replaceFileAsync } from './files.js';
export { OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES } from './indexes.js';
export { CLEANER_CHECKPOINT_FILE, CLEANED_SUFFIX, SWAP_SUFFIX, OFFSET_MAP_ENTRY_OVERHEAD_BYTES } from './logCleaner.js';
