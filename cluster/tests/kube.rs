//! The Kubernetes parts (feature `kubernetes`) against a fake kube-apiserver: the IPPool exporter,
//! the importer, the pod reconciler, leader-only behaviour, and the deploy/ manifests and chart.

#![cfg(feature = "kubernetes")]

mod kube {
    pub mod chart;
    pub mod fake_api;
    pub mod fake_http;
    pub mod support;

    mod deploy;
    mod exporter;
    mod importer;
    mod leader;
    mod reconciler;
}
