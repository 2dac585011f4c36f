import { MAX_PREVIEW_PX, humanSize, previewSize } from './attachment';

describe('previewSize', () => {
  it('keeps small images as they are and scales large ones down to fit, keeping their shape', () => {
    expect(previewSize(200, 100)).toEqual({ width: 200, height: 100 });
    expect(previewSize(640, 480)).toEqual({ width: MAX_PREVIEW_PX, height: 240 });
    expect(previewSize(1000, 4000)).toEqual({ width: 80, height: MAX_PREVIEW_PX });
    expect(previewSize(100000, 1)).toEqual({ width: MAX_PREVIEW_PX, height: 1 });
  });
});

describe('humanSize', () => {
  it('says sizes in the unit that reads best', () => {
    expect(humanSize(512)).toBe('512 B');
    expect(humanSize(1536)).toBe('1.5 KB');
    expect(humanSize(48213)).toBe('47 KB');
    expect(humanSize(25 * 1024 * 1024)).toBe('25 MB');
  });
});
