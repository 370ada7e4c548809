// Request validator for the Rocket.Chat double: Rocket.Chat's own published
// request schemas (@rocket.chat/rest-typings), bundled by `cargo xtask test`
// (xtask/src/rocketchat_schemas.rs) into target/rocketchat-schemas/validator.cjs.
//
// Protocol, one JSON object per line:
//   out (first line): {"ready": true, "validators": ["isChatSendMessageProps", ...]}
//   in:  {"id": 1, "validator": "isChatSendMessageProps", "data": {...}}
//   out: {"id": 1, "ok": true} | {"id": 1, "ok": false, "errors": [{"instancePath", "message", ...}]}
import { createInterface } from 'node:readline';

import { isLoginProps } from '@rocket.chat/rest-typings/dist/v1/auth.js';
import {
	isChatSendMessageProps,
	isChatUpdateProps,
	isChatDeleteProps,
	isChatReactProps,
	isChatGetMessageProps,
	isChatSyncMessagesProps,
} from '@rocket.chat/rest-typings/dist/v1/chat.js';
import { isUserCreateParamsPOST } from '@rocket.chat/rest-typings/dist/v1/users/UserCreateParamsPOST.js';
import { isUsersInfoParamsGetProps } from '@rocket.chat/rest-typings/dist/v1/users/UsersInfoParamsGet.js';
import { isUsersGetPresenceParamsGET } from '@rocket.chat/rest-typings/dist/v1/users/UsersGetPresenceParamsGET.js';
import { isUsersListParamsGET } from '@rocket.chat/rest-typings/dist/v1/users/UsersListParamsGET.js';
import { isChannelsHistoryProps } from '@rocket.chat/rest-typings/dist/v1/channels/ChannelsHistoryProps.js';
import { isChannelsJoinProps } from '@rocket.chat/rest-typings/dist/v1/channels/ChannelsJoinProps.js';
import { isChannelsInviteProps } from '@rocket.chat/rest-typings/dist/v1/channels/ChannelsInviteProps.js';
import { isGroupsHistoryProps } from '@rocket.chat/rest-typings/dist/v1/groups/GroupsHistoryProps.js';
import { isGroupsMembersProps } from '@rocket.chat/rest-typings/dist/v1/groups/GroupsMembersProps.js';
import { isGroupsInviteProps } from '@rocket.chat/rest-typings/dist/v1/groups/GroupsInviteProps.js';
import { isDmCreateProps } from '@rocket.chat/rest-typings/dist/v1/dm/DmCreateProps.js';
import { isDmHistoryProps } from '@rocket.chat/rest-typings/dist/v1/dm/DmHistoryProps.js';
import { isDmMemberProps } from '@rocket.chat/rest-typings/dist/v1/dm/DmMembersProps.js';
import { isRoomsInfoProps } from '@rocket.chat/rest-typings/dist/v1/rooms.js';
import { isSubscriptionsGetProps } from '@rocket.chat/rest-typings/dist/v1/subscriptionsEndpoints.js';

const validators = {
	isLoginProps,
	isChatSendMessageProps,
	isChatUpdateProps,
	isChatDeleteProps,
	isChatReactProps,
	isChatGetMessageProps,
	isChatSyncMessagesProps,
	isUserCreateParamsPOST,
	isUsersInfoParamsGetProps,
	isUsersGetPresenceParamsGET,
	isUsersListParamsGET,
	isChannelsHistoryProps,
	isChannelsInviteProps,
	isChannelsJoinProps,
	isGroupsHistoryProps,
	isGroupsMembersProps,
	isGroupsInviteProps,
	isDmCreateProps,
	isDmHistoryProps,
	isDmMemberProps,
	isRoomsInfoProps,
	isSubscriptionsGetProps,
};

const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function answer(line) {
	let request;
	try {
		request = JSON.parse(line);
	} catch (e) {
		return { id: null, ok: false, errors: [{ message: `validator: unreadable request: ${e.message}` }] };
	}
	const validate = validators[request.validator];
	if (!validate) {
		return { id: request.id, ok: false, errors: [{ message: `validator: no validator named ${request.validator}` }] };
	}
	if (validate(request.data)) {
		return { id: request.id, ok: true };
	}
	const errors = (validate.errors || []).map(({ instancePath, schemaPath, keyword, params, message }) => ({
		instancePath,
		schemaPath,
		keyword,
		params,
		message,
	}));
	return { id: request.id, ok: false, errors };
}

reply({ ready: true, validators: Object.keys(validators) });
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
	if (line.trim()) reply(answer(line));
});
lines.on('close', () => process.exit(0));
