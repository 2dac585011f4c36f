import { usernameProblem } from './register.page';

describe('usernameProblem', () => {
  it('accepts what the server accepts', () => {
    for (const ok of ['abc', 'alice_1', 'a.b.c', 'z'.repeat(32)]) {
      expect(usernameProblem(ok)).toBeNull();
    }
  });

  it('names what is wrong with the rest', () => {
    expect(usernameProblem('ab')).toMatch(/3 to 32/);
    expect(usernameProblem('a'.repeat(33))).toMatch(/3 to 32/);
    expect(usernameProblem('1abc')).toMatch(/starts with a letter/);
    expect(usernameProblem('Alice')).toMatch(/starts with a letter/);
    expect(usernameProblem('al ice')).toMatch(/lowercase letters/);
    expect(usernameProblem('feed.emsc')).toMatch(/kept for feeds/);
  });
});
