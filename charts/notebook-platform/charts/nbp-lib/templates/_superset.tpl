{{/*
nbp-lib.superset renders the platform's Superset: gunicorn serving `superset.app:create_app()` on port
8088, and a Job per release revision that migrates Superset's metadata database, runs `superset init` and
imports the dashboards (superset-auth/import_dashboards.py, idempotent). The web pods wait in an
initContainer until that Job's work is there (superset-auth/wait_for_init.py), so no pod serves a
database another version left behind. Non-root, read-only root filesystem (writable: /tmp, an emptyDir,
which holds SUPERSET_HOME too).

Arguments (a dict):
  root            the calling chart's top-level context
  image           image reference (Superset's environment from superset-auth/requirements.lock)
  values          .Values.superset (replicas, resources, init, gunicorn, nodeSelector, tolerations)
  labels          common labels
  podLabels       extra pod labels (access labels other policies select on)
  env             list of EnvVar for every Superset container
  configMap       the ConfigMap with superset-auth/*.py
  secretSources   projected volume sources mounted at /opt/nbp/secrets
  networkPolicy   {enabled, ingress: [rules], egress: [rules]}
*/}}
{{- define "nbp-lib.superset" -}}
{{- $root := .root -}}
{{- $fullname := printf "%s-superset" $root.Release.Name -}}
{{- $selector := dict "app.kubernetes.io/name" "superset" "app.kubernetes.io/instance" $root.Release.Name -}}
{{- $labels := merge (dict "app.kubernetes.io/component" "superset") $selector .labels -}}
{{- $security := include "nbp-lib.containerSecurityContext" (dict "uid" 10001 "gid" 10001) | fromYaml -}}
{{- $values := .values -}}
{{- $ignore := include "nbp-lib.pullPolicyIgnore" $root | fromYamlArray -}}
{{- $volumes := list
  (dict "name" "tmp" "emptyDir" (dict "sizeLimit" "512Mi"))
  (dict "name" "superset-auth" "configMap" (dict "name" .configMap))
  (dict "name" "secrets" "projected" (dict "sources" .secretSources)) -}}
{{- $mounts := list
  (dict "name" "tmp" "mountPath" "/tmp")
  (dict "name" "superset-auth" "mountPath" "/opt/nbp/superset-auth" "readOnly" true)
  (dict "name" "secrets" "mountPath" "/opt/nbp/secrets" "readOnly" true) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  {{- $deploymentIgnore := $ignore }}
  {{- if lt (int $values.replicas) 2 }}
  {{- $deploymentIgnore = concat $deploymentIgnore (list "deployment-replicas" "deployment-has-poddisruptionbudget" "deployment-has-host-podantiaffinity") }}
  {{- end }}
  {{- with $deploymentIgnore }}
  annotations:
    kube-score/ignore: {{ join "," . | quote }}
  {{- end }}
spec:
  replicas: {{ $values.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- toYaml (merge (dict) $labels .podLabels) | nindent 8 }}
      {{- with $values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if gt (int $values.replicas) 1 }}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- toYaml $selector | nindent 20 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      initContainers:
        # Until this revision's Job has migrated the metadata database and imported the dashboards.
        - name: wait-for-init
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "/opt/nbp/superset-auth/wait_for_init.py", "--timeout", "1800"]
          env:
            {{- toYaml .env | nindent 12 }}
          securityContext:
            {{- toYaml $security | nindent 12 }}
          resources:
            {{- toYaml $values.init.resources | nindent 12 }}
          volumeMounts:
            {{- toYaml $mounts | nindent 12 }}
      containers:
        - name: superset
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - gunicorn
            - --bind=0.0.0.0:8088
            - --workers={{ $values.gunicorn.workers }}
            - --worker-class=gthread
            - --threads={{ $values.gunicorn.threads }}
            - --timeout={{ $values.gunicorn.timeout }}
            - --graceful-timeout=10
            - --limit-request-line=0
            - --limit-request-field_size=0
            - --worker-tmp-dir=/tmp
            - superset.app:create_app()
          ports:
            - name: http
              containerPort: 8088
              protocol: TCP
          env:
            {{- toYaml .env | nindent 12 }}
          # Superset's app takes tens of seconds to start; liveness only counts once it has.
          startupProbe:
            httpGet: {path: /health, port: http}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 30
          readinessProbe:
            httpGet: {path: /health, port: http}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          # Liveness: gunicorn still accepts connections (a slow answer under load is not a dead
          # process); readiness: the app answers.
          livenessProbe:
            tcpSocket: {port: http}
            periodSeconds: 20
            timeoutSeconds: 10
            failureThreshold: 6
          securityContext:
            {{- toYaml $security | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          volumeMounts:
            {{- toYaml $mounts | nindent 12 }}
      volumes:
        {{- toYaml $volumes | nindent 8 }}
---
# One Job per release revision (a Job's pod template cannot change): migrate, init, import the dashboards.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-init-%d" $fullname (int $root.Release.Revision) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml (merge (dict "app.kubernetes.io/component" "superset-init") $labels) | nindent 4 }}
  {{- with $ignore }}
  annotations:
    kube-score/ignore: {{ join "," . | quote }}
  {{- end }}
spec:
  backoffLimit: {{ $values.init.backoffLimit }}
  activeDeadlineSeconds: {{ $values.init.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        {{- toYaml (merge (dict "app.kubernetes.io/component" "superset-init") .podLabels (dict "app.kubernetes.io/instance" $root.Release.Name "app.kubernetes.io/name" "superset-init")) | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: init
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - sh
            - -ec
            - |
              superset db upgrade
              superset init
              python /opt/nbp/superset-auth/import_dashboards.py
          env:
            {{- toYaml .env | nindent 12 }}
          securityContext:
            {{- toYaml $security | nindent 12 }}
          resources:
            {{- toYaml $values.init.resources | nindent 12 }}
          volumeMounts:
            {{- toYaml $mounts | nindent 12 }}
      volumes:
        {{- toYaml $volumes | nindent 8 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- toYaml $selector | nindent 4 }}
  ports:
    - name: http
      port: 8088
      targetPort: http
      protocol: TCP
{{- if gt (int $values.replicas) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
{{- end }}
{{- if .networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- toYaml .networkPolicy.ingress | nindent 4 }}
  egress:
    {{- toYaml .networkPolicy.egress | nindent 4 }}
---
# The init Job's pods: no ingress at all; out to DNS, the database.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $fullname }}-init
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: superset-init
      app.kubernetes.io/instance: {{ $root.Release.Name }}
  policyTypes: [Ingress, Egress]
  ingress: []
  egress:
    {{- toYaml .networkPolicy.egress | nindent 4 }}
{{- end }}
{{- end -}}
