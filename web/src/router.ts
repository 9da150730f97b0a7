// The app's screens (issue 12). Paths are the UI's own; the daemon answers every non-API path with
// index.html, so a reload on /mandates/x keeps the screen. Each screen is its own view file.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import OverviewView from './views/OverviewView.vue';

const routes: RouteRecordRaw[] = [
  { path: '/', name: 'overview', component: OverviewView, meta: { title: 'Overview' } },
  { path: '/mandates/:name', name: 'mandate', component: () => import('./views/MandateView.vue'), props: true, meta: { title: 'Mandate' } },
  { path: '/backups/:name', name: 'backup', component: () => import('./views/BackupView.vue'), props: true, meta: { title: 'Backup' } },
  { path: '/restore', name: 'restore', component: () => import('./views/RestoreView.vue'), meta: { title: 'Restore' } },
  { path: '/jobs', name: 'jobs', component: () => import('./views/JobsView.vue'), meta: { title: 'Jobs' } },
  { path: '/targets', name: 'targets', component: () => import('./views/TargetsView.vue'), meta: { title: 'Targets' } },
  { path: '/problems', name: 'problems', component: () => import('./views/ProblemsView.vue'), meta: { title: 'Configuration problems' } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { title: 'Not found' } },
];

export const router = createRouter({ history: createWebHistory('/'), routes });

router.afterEach((to) => {
  const title = typeof to.meta.title === 'string' ? to.meta.title : '';
  document.title = title === '' ? 'Backer' : `${title} · Backer`;
});
