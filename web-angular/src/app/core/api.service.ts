import { HttpClient, HttpEvent, HttpParams } from '@angular/common/http';
import { Injectable, inject } from '@angular/core';
import { Observable, map } from 'rxjs';

import { FeedSource, Member, Message, Page, Room, RoomSummary, Session, SignedUrl, UploadGrant, User } from './api.types';

/** Typed calls of the node's REST API (docs/PROTOCOL.md). Tokens are added by the auth interceptor. */
@Injectable({ providedIn: 'root' })
export class ApiService {
  private readonly http = inject(HttpClient);

  register(username: string, password: string, displayName?: string): Observable<Session> {
    const body: Record<string, string> = { username, password };
    if (displayName?.trim()) {
      body['display_name'] = displayName.trim();
    }
    return this.http.post<Session>('/api/auth/register', body);
  }

  login(username: string, password: string): Observable<Session> {
    return this.http.post<Session>('/api/auth/login', { username, password });
  }

  refresh(refreshToken: string): Observable<Session> {
    return this.http.post<Session>('/api/auth/refresh', { refresh_token: refreshToken });
  }

  logout(refreshToken: string): Observable<null> {
    return this.http.post<null>('/api/auth/logout', { refresh_token: refreshToken });
  }

  usernameAvailable(username: string): Observable<{ username: string; available: boolean; reason?: string }> {
    return this.http.get<{ username: string; available: boolean; reason?: string }>('/api/users/available', {
      params: { username },
    });
  }

  searchUsers(prefix: string, limit = 10): Observable<User[]> {
    return this.http
      .get<{ users: User[] }>('/api/users', { params: { prefix, limit } })
      .pipe(map((r) => r.users));
  }

  me(): Observable<User> {
    return this.http.get<User>('/api/users/me');
  }

  updateMe(displayName: string): Observable<User> {
    return this.http.patch<User>('/api/users/me', { display_name: displayName });
  }

  rooms(after?: number): Observable<Page<RoomSummary>> {
    let params = new HttpParams().set('limit', 100);
    if (after !== undefined) {
      params = params.set('after', after);
    }
    return this.http
      .get<{ rooms: RoomSummary[]; next_after: number | null }>('/api/rooms', { params })
      .pipe(map((r) => ({ items: r.rooms, next: r.next_after })));
  }

  /** The ingest sources, each with its own feed room. */
  feeds(): Observable<FeedSource[]> {
    return this.http.get<FeedSource[]>('/api/feeds');
  }

  createRoom(name: string): Observable<Room> {
    return this.http.post<Room>('/api/rooms', { name });
  }

  joinRoom(id: number): Observable<Room> {
    return this.http.post<Room>(`/api/rooms/${id}/join`, null);
  }

  leaveRoom(id: number): Observable<null> {
    return this.http.post<null>(`/api/rooms/${id}/leave`, null);
  }

  openDm(userId: number): Observable<Room> {
    return this.http.post<Room>('/api/dms', { user_id: userId });
  }

  members(roomId: number, limit = 100): Observable<Member[]> {
    return this.http
      .get<{ members: Member[] }>(`/api/rooms/${roomId}/members`, { params: { limit } })
      .pipe(map((r) => r.members));
  }

  uploadGrant(roomId: number, file: { name: string; type: string; size: number }): Observable<UploadGrant> {
    return this.http.post<UploadGrant>(`/api/rooms/${roomId}/uploads`, {
      filename: file.name,
      content_type: file.type,
      size: file.size,
    });
  }

  avatarGrant(file: { name: string; type: string; size: number }): Observable<UploadGrant> {
    return this.http.post<UploadGrant>('/api/users/me/avatar/uploads', {
      filename: file.name,
      content_type: file.type,
      size: file.size,
    });
  }

  setAvatar(uploadId: string): Observable<User> {
    return this.http.put<User>('/api/users/me/avatar', { upload_id: uploadId });
  }

  removeAvatar(): Observable<User> {
    return this.http.delete<User>('/api/users/me/avatar');
  }

  avatarUrl(userId: number): Observable<SignedUrl> {
    return this.http.get<SignedUrl>(`/api/users/${userId}/avatar`);
  }

  /**
   * Posts `file` with the grant's form straight to the blob store (S3, MinIO, or the embedded
   * node's folder), reporting upload progress.
   */
  postFile(grant: UploadGrant, file: Blob): Observable<HttpEvent<unknown>> {
    const form = new FormData();
    for (const f of grant.fields) {
      form.append(f.name, f.value);
    }
    form.append(grant.file_field, file);
    return this.http.post(grant.url, form, { reportProgress: true, observe: 'events', responseType: 'text' });
  }

  attachmentUrl(roomId: number, attachmentId: string): Observable<SignedUrl> {
    return this.http.get<SignedUrl>(`/api/rooms/${roomId}/attachments/${attachmentId}`);
  }

  history(roomId: number, before?: number, limit = 50): Observable<Page<Message>> {
    let params = new HttpParams().set('limit', limit);
    if (before !== undefined) {
      params = params.set('before', before);
    }
    return this.http
      .get<{ messages: Message[]; next_before: number | null }>(`/api/rooms/${roomId}/messages`, { params })
      .pipe(map((r) => ({ items: r.messages, next: r.next_before })));
  }
}
