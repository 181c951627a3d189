// ListGroups (key 16), versions 0-4: v3 is the first flexible version, v4 filters by state and
// reports each group's state. (v5's type filter is beyond this range.)
import type { MessageSpec } from '../schema.js';

export const LIST_GROUPS_REQUEST = {
  name: 'ListGroupsRequest',
  type: 'request',
  apiKey: 16,
  validVersions: '0-4',
  flexibleVersions: '3+',
  fields: [{ name: 'StatesFilter', type: '[]string', versions: '4+' }],
} as const satisfies MessageSpec;

export const LIST_GROUPS_RESPONSE = {
  name: 'ListGroupsResponse',
  type: 'response',
  apiKey: 16,
  validVersions: '0-4',
  flexibleVersions: '3+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'ErrorCode', type: 'int16', versions: '0+' },
    {
      name: 'Groups', type: '[]ListedGroup', versions: '0+',
      fields: [
        { name: 'GroupId', type: 'string', versions: '0+' },
        { name: 'ProtocolType', type: 'string', versions: '0+' },
        { name: 'GroupState', type: 'string', versions: '4+', ignorable: true },
      ],
    },
  ],
} as const satisfies MessageSpec;
