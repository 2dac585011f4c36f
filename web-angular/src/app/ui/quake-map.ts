import {
  ChangeDetectionStrategy,
  Component,
  ElementRef,
  OnDestroy,
  afterNextRender,
  effect,
  inject,
  input,
  output,
  signal,
} from '@angular/core';
import { HttpClient } from '@angular/common/http';
import { firstValueFrom } from 'rxjs';
import type * as Leaflet from 'leaflet';
import type { Topology } from 'topojson-specification';

import { Quake, markerRadius } from '../core/quakes';

/** `public/config.json`: what a deployment may set without rebuilding the app. */
interface RuntimeConfig {
  mapTileUrl: string | null;
  mapTileAttribution: string | null;
}

const BASE = { color: '#b91c1c', weight: 1, fillColor: '#ef4444', fillOpacity: 0.45 };
const CHOSEN = { color: '#1e3a8a', weight: 3, fillColor: '#f59e0b', fillOpacity: 0.9 };

/**
 * The feed room's map (Leaflet): a marker per earthquake, sized by magnitude, kept in step with the
 * room as events arrive, change or are withdrawn. The base layer works offline: country outlines
 * from the `world-atlas` package (through `topojson-client`), or tiles when `config.json` names a
 * tile URL (production). A click on a marker chooses its quake; the chosen one is highlighted.
 */
@Component({
  selector: 'bt-quake-map',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'block' },
  template: `<div class="h-full w-full bg-sky-100" role="img" [attr.aria-label]="label()"></div>`,
})
export class QuakeMap implements OnDestroy {
  private readonly host = inject(ElementRef<HTMLElement>);
  private readonly http = inject(HttpClient);
  readonly quakes = input.required<Quake[]>();
  readonly chosen = input<number | null>(null);
  readonly choose = output<number>();
  protected readonly label = signal('Map of the earthquakes');

  private L: typeof Leaflet | null = null;
  private map: Leaflet.Map | null = null;
  private readonly markers = new Map<number, Leaflet.CircleMarker>();
  private readonly ready = signal(false);
  private resize: ResizeObserver | null = null;

  constructor() {
    afterNextRender(() => this.init().catch((e: unknown) => console.error('the map failed to start', e)));
    effect(() => {
      const quakes = this.quakes();
      this.label.set(`Map of ${quakes.length} earthquakes`);
      if (this.ready()) {
        this.sync(quakes);
      }
    });
    effect(() => {
      const chosen = this.chosen();
      if (this.ready()) {
        this.highlight(chosen);
      }
    });
  }

  ngOnDestroy(): void {
    this.resize?.disconnect();
    this.map?.remove();
    this.map = null;
  }

  private async init(): Promise<void> {
    const el = (this.host.nativeElement as HTMLElement).firstElementChild as HTMLElement;
    loadCss('/assets/leaflet/leaflet.css');
    const [mod, config] = await Promise.all([
      import('leaflet'),
      firstValueFrom(this.http.get<RuntimeConfig>('/config.json')).catch(() => null),
    ]);
    // Leaflet 1.9 is CommonJS: its namespace is the module's default export.
    const L = ((mod as { default?: typeof Leaflet }).default ?? mod) as typeof Leaflet;
    this.L = L;
    const map = L.map(el, { worldCopyJump: true, minZoom: 1, maxZoom: 10 }).setView([30, 15], 2);
    this.map = map;
    // The layout may size the map after it starts (the room's page fills in): redraw to fit.
    this.resize = new ResizeObserver(() => map.invalidateSize());
    this.resize.observe(el);
    if (config?.mapTileUrl) {
      L.tileLayer(config.mapTileUrl, { attribution: config.mapTileAttribution ?? '' }).addTo(map);
    } else {
      const [topo, { feature }] = await Promise.all([
        firstValueFrom(this.http.get<Topology>('/assets/world/countries-110m.json')),
        import('topojson-client'),
      ]);
      const countries = topo.objects['countries'];
      if (countries) {
        L.geoJSON(feature(topo, countries), {
          style: { color: '#64748b', weight: 0.6, fillColor: '#f8fafc', fillOpacity: 1 },
          interactive: false,
        }).addTo(map);
      }
    }
    this.ready.set(true);
  }

  private sync(quakes: Quake[]): void {
    const L = this.L;
    const map = this.map;
    if (!L || !map) {
      return;
    }
    const live = new Set<number>();
    for (const q of quakes) {
      live.add(q.seq);
      const tip = `M${q.magnitude} ${q.region}`;
      const old = this.markers.get(q.seq);
      if (old) {
        old.setLatLng([q.lat, q.lon]).setRadius(markerRadius(q.magnitude)).setTooltipContent(tip);
        continue;
      }
      const m = L.circleMarker([q.lat, q.lon], { ...BASE, radius: markerRadius(q.magnitude) })
        .bindTooltip(tip)
        .on('click', () => this.choose.emit(q.seq))
        .addTo(map);
      this.markers.set(q.seq, m);
    }
    for (const [seq, m] of this.markers) {
      if (!live.has(seq)) {
        m.remove();
        this.markers.delete(seq);
      }
    }
    this.highlight(this.chosen());
  }

  private highlight(chosen: number | null): void {
    for (const [seq, m] of this.markers) {
      m.setStyle(seq === chosen ? CHOSEN : BASE);
      if (seq === chosen) {
        m.bringToFront().openTooltip();
        this.map?.panTo(m.getLatLng());
      }
    }
  }
}

function loadCss(href: string): void {
  if (!document.querySelector(`link[data-href="${href}"]`)) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.dataset['href'] = href;
    document.head.appendChild(link);
  }
}
