import { HttpEventType } from '@angular/common/http';
import { Injectable, inject } from '@angular/core';
import { Observable, filter, map, mergeMap, shareReplay, timer } from 'rxjs';

import { ApiService } from './api.service';
import { SignedUrl, UploadGrant } from './api.types';

/** Where an upload is: its progress (0..1) until the store has it, then its id. */
export type UploadProgress = { state: 'uploading'; fraction: number } | { state: 'done'; uploadId: string };

/** Renew a signed URL this long before it expires. */
const URL_MARGIN_MS = 30_000;

/**
 * Files: an upload asks the node for a grant, then posts the file straight to the blob store with
 * it (never through the chat); downloads ask for short-lived signed URLs, kept until shortly
 * before they expire.
 */
@Injectable({ providedIn: 'root' })
export class UploadsService {
  private readonly api = inject(ApiService);
  private readonly urls = new Map<string, Observable<SignedUrl>>();

  /** Uploads `file` for a message in `roomId`. */
  upload(roomId: number, file: File): Observable<UploadProgress> {
    return this.api.uploadGrant(roomId, file).pipe(mergeMap((grant) => this.post(grant, file)));
  }

  /** Uploads `file` as the caller's next avatar (set it with ApiService.setAvatar). */
  uploadAvatar(file: File): Observable<UploadProgress> {
    return this.api.avatarGrant(file).pipe(mergeMap((grant) => this.post(grant, file)));
  }

  /** A URL of a room's attachment, signed for a few minutes. */
  attachmentUrl(roomId: number, attachmentId: string): Observable<string> {
    return this.cached(`a:${roomId}:${attachmentId}`, () => this.api.attachmentUrl(roomId, attachmentId));
  }

  /** A URL of a user's avatar, signed for a few minutes. */
  avatarUrl(userId: number, avatarRef: string): Observable<string> {
    return this.cached(`u:${userId}:${avatarRef}`, () => this.api.avatarUrl(userId));
  }

  private post(grant: UploadGrant, file: File): Observable<UploadProgress> {
    return this.api.postFile(grant, file).pipe(
      filter((e) => e.type === HttpEventType.UploadProgress || e.type === HttpEventType.Response),
      map((e): UploadProgress =>
        e.type === HttpEventType.UploadProgress
          ? { state: 'uploading', fraction: e.total ? e.loaded / e.total : 0 }
          : { state: 'done', uploadId: grant.upload_id },
      ),
    );
  }

  private cached(key: string, fetch: () => Observable<SignedUrl>): Observable<string> {
    let url = this.urls.get(key);
    if (!url) {
      url = fetch().pipe(shareReplay(1));
      this.urls.set(key, url);
      // Forget it shortly before it expires, so the next viewer gets a fresh one.
      url.pipe(mergeMap((u) => timer(Math.max(0, u.expires_at_ms - Date.now() - URL_MARGIN_MS)))).subscribe({
        next: () => this.urls.delete(key),
        error: () => this.urls.delete(key),
      });
    }
    return url.pipe(map((u) => u.url));
  }
}

