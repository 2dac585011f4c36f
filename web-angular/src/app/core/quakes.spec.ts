import { Message } from './api.types';
import { markerRadius, toQuake } from './quakes';

function message(body: string, over: Partial<Message> = {}): Message {
  return {
    room_id: 3,
    seq: 9,
    message_id: 'm9',
    sender_id: 1,
    body,
    created_at_ms: 1000,
    attachments: [],
    content_type: 'application/geo+json',
    ...over,
  };
}

const feature = {
  type: 'Feature',
  id: '20261130_0000101',
  geometry: { type: 'Point', coordinates: [26.12, 38.21, -10] },
  properties: { source: 'emsc', time_ms: 1764496831200, depth_km: 10, magnitude: 3.4, magnitude_type: 'ml', region: 'DODECANESE ISLANDS, GREECE' },
};

describe('toQuake', () => {
  it('reads a feed message’s Feature', () => {
    expect(toQuake(message(JSON.stringify(feature)))).toEqual({
      seq: 9,
      id: '20261130_0000101',
      lon: 26.12,
      lat: 38.21,
      depthKm: 10,
      magnitude: 3.4,
      magnitudeType: 'ml',
      region: 'DODECANESE ISLANDS, GREECE',
      timeMs: 1764496831200,
    });
  });

  it('takes no deleted message, no text message and no body that is not a Point', () => {
    expect(toQuake(message(JSON.stringify(feature), { deleted_at_ms: 5 }))).toBeNull();
    expect(toQuake(message(JSON.stringify(feature), { content_type: 'text/plain' }))).toBeNull();
    expect(toQuake(message('{not json'))).toBeNull();
    expect(toQuake(message(JSON.stringify({ ...feature, geometry: { type: 'LineString', coordinates: [[1, 2]] } })))).toBeNull();
  });

  it('falls back on the depth in the coordinates and the message’s time', () => {
    const bare = { ...feature, properties: { magnitude: 2 } };
    expect(toQuake(message(JSON.stringify(bare)))).toMatchObject({ depthKm: 10, timeMs: 1000, region: 'Unknown region' });
  });
});

describe('markerRadius', () => {
  it('grows with magnitude and stays bounded', () => {
    const radii = [0, 2, 4, 6, 8].map(markerRadius);
    expect(radii).toEqual([...radii].sort((a, b) => a - b));
    expect(new Set(radii).size).toBe(radii.length);
    expect(markerRadius(-1)).toBe(markerRadius(0));
    expect(markerRadius(12)).toBe(markerRadius(9.5));
  });
});
