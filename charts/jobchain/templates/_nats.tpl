{{/* nats-server's configuration (the ConfigMap of templates/nats.yaml; its checksum restarts the servers when it
changes). `$POD_NAME` and `$NATS_TOKEN` are environment references that nats-server resolves at start. */}}
{{- define "jobchain.natsConfig" -}}
{{- $n := .Values.nats.install -}}
{{- $name := include "jobchain.natsName" . -}}
{{- $headless := include "jobchain.natsHeadless" . -}}
{{- $replicas := int $n.replicas -}}
server_name: $POD_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
lame_duck_duration: 30s
lame_duck_grace_period: 10s
jetstream {
  store_dir: /data/jetstream
}
{{- if $n.auth.secret }}
authorization {
  token: $NATS_TOKEN
}
{{- end }}
{{- if gt $replicas 1 }}
cluster {
  name: {{ $name }}
  listen: 0.0.0.0:6222
  routes: [
    {{- range $i := until $replicas }}
    nats://{{ $name }}-{{ $i }}.{{ $headless }}.{{ $.Release.Namespace }}.svc.cluster.local:6222
    {{- end }}
  ]
}
{{- end }}
{{- end -}}
