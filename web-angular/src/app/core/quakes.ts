import { Message } from './api.types';

/** An earthquake as the feed room's map and list show it: one message of the room (a GeoJSON Feature). */
export interface Quake {
  seq: number;
  id: string;
  lon: number;
  lat: number;
  depthKm: number;
  magnitude: number;
  magnitudeType: string;
  region: string;
  timeMs: number;
}

interface Feature {
  id?: string | number;
  geometry?: { type?: string; coordinates?: unknown };
  properties?: {
    magnitude?: unknown;
    magnitude_type?: unknown;
    region?: unknown;
    time_ms?: unknown;
    depth_km?: unknown;
  };
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

/** The quake a feed message describes; null for a deleted message or a body that is no Point Feature. */
export function toQuake(m: Message): Quake | null {
  if (m.deleted_at_ms || !m.content_type.startsWith('application/geo+json')) {
    return null;
  }
  let f: Feature;
  try {
    f = JSON.parse(m.body) as Feature;
  } catch {
    return null;
  }
  const c = f.geometry?.coordinates;
  if (f.geometry?.type !== 'Point' || !Array.isArray(c) || typeof c[0] !== 'number' || typeof c[1] !== 'number') {
    return null;
  }
  const p = f.properties ?? {};
  return {
    seq: m.seq,
    id: String(f.id ?? m.message_id),
    lon: c[0],
    lat: c[1],
    depthKm: num(p.depth_km, typeof c[2] === 'number' ? -c[2] : 0),
    magnitude: num(p.magnitude, 0),
    magnitudeType: typeof p.magnitude_type === 'string' ? p.magnitude_type : '',
    region: typeof p.region === 'string' ? p.region : 'Unknown region',
    timeMs: num(p.time_ms, m.created_at_ms),
  };
}

/** A marker's radius in pixels: grows with magnitude (energy grows 32× a step; the eye needs less). */
export function markerRadius(magnitude: number): number {
  const m = Math.max(0, Math.min(magnitude, 9.5));
  return Math.round(3 + m * m * 0.45);
}
