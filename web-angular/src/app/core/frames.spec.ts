import { frameSeq, parseRoomFrame, parseUserFrame } from './frames';

describe('parseRoomFrame', () => {
  const base = { 'room-id': '12', 'message-id': 'a1b2', seq: '7', 'sender-id': '3', sender: 'alice', timestamp: '1700000000000' };

  it('reads a message with its attachments and marks', () => {
    const e = parseRoomFrame(
      {
        ...base,
        event: 'message',
        'content-type': 'text/plain;charset=utf-8',
        'edited-at': '1700000000500',
        attachments: '[{"id":"u1","name":"a.png","content_type":"image/png","size":10,"width":4,"height":3}]',
      },
      'hello',
    );
    expect(e).toEqual({
      type: 'message',
      sender: 'alice',
      message: {
        room_id: 12,
        seq: 7,
        message_id: 'a1b2',
        sender_id: 3,
        body: 'hello',
        created_at_ms: 1700000000000,
        attachments: [{ id: 'u1', name: 'a.png', content_type: 'image/png', size: 10, width: 4, height: 3 }],
        content_type: 'text/plain;charset=utf-8',
        edited_at_ms: 1700000000500,
        deleted_at_ms: null,
      },
    });
    expect(e && frameSeq(e)).toBe(7);
  });

  it('reads edits and deletes with their target', () => {
    expect(parseRoomFrame({ ...base, event: 'edit', 'target-seq': '5' }, 'new text')).toEqual({
      type: 'edit', roomId: 12, seq: 7, targetSeq: 5, body: 'new text', atMs: 1700000000000, senderId: 3,
    });
    expect(parseRoomFrame({ ...base, event: 'delete', 'target-seq': '5' }, '')).toMatchObject({ type: 'delete', targetSeq: 5, seq: 7 });
  });

  it('reads typing and read events, which carry no seq of their own', () => {
    const typing = parseRoomFrame({ 'room-id': '12', event: 'typing', 'user-id': '4', username: 'bob' }, '');
    expect(typing).toEqual({ type: 'typing', roomId: 12, userId: 4, username: 'bob' });
    expect(typing && frameSeq(typing)).toBeNull();
    expect(parseRoomFrame({ 'room-id': '12', event: 'read', 'user-id': '4', seq: '9' }, '')).toEqual({
      type: 'read', roomId: 12, userId: 4, seq: 9,
    });
  });

  it('skips event kinds it does not know, and refuses malformed numbers', () => {
    expect(parseRoomFrame({ 'room-id': '12', event: 'reaction' }, '')).toBeNull();
    expect(() => parseRoomFrame({ ...base, event: 'message', seq: '-1' }, 'x')).toThrow(/seq/);
    expect(() => parseRoomFrame({ ...base, event: 'edit' }, 'x')).toThrow(/target-seq/);
  });
});

describe('parseUserFrame', () => {
  it('reads rooms added and presence', () => {
    expect(parseUserFrame({ event: 'room.added' }, '{"id":5,"kind":"dm"}')).toEqual({ type: 'room.added', room: { id: 5, kind: 'dm' } });
    expect(parseUserFrame({ event: 'presence' }, '{"users":[{"user_id":7,"online":true,"last_seen_ms":null}]}')).toEqual({
      type: 'presence',
      users: [{ user_id: 7, online: true, last_seen_ms: null }],
    });
    expect(parseUserFrame({ event: 'other' }, '')).toBeNull();
  });
});
