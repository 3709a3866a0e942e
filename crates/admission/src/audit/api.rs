//! The API server side of `webhook audit`: list calls only (get and list are all the chart's
//! ClusterRole grants it), paged so that no more than one page is held at a time.

use std::collections::BTreeMap;
use std::io::Write;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::{Audit, AuditError};
use crate::workload::KINDS;

/// Objects per list call: a page is held as JSON and as objects at once, so a small one keeps
/// the peak low (10,000 pods, debug build: 125.8 MiB peak at 500 a page, 50.0 MiB at 100).
const PAGE: u32 = 100;

/// Audits every namespace's objects of every [`KINDS`] the API server serves (Argo Rollouts
/// only where its CRD is installed).
pub(crate) async fn audit<W: Write>(
    client: Client,
    audit: &mut Audit<'_, W>,
) -> Result<(), AuditError> {
    let labels = namespace_labels(&client).await?;
    for k in KINDS {
        let gvk = GroupVersionKind::gvk(k.group, k.version, k.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, k.plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let audited = each_page(&api, k.plural, |items| {
            for object in &items {
                let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
                // Items of a list carry no kind of their own.
                value["kind"] = Value::String(k.kind.to_owned());
                let ns = object.metadata.namespace.as_deref().unwrap_or("");
                audit.object(&value, labels.get(ns))?;
            }
            Ok(())
        })
        .await;
        match audited {
            // Not served here (a CRD that is not installed): nothing of that kind exists.
            Err(AuditError::List {
                source: kube::Error::Api(e),
                ..
            }) if e.code == 404 => {}
            other => other?,
        }
    }
    Ok(())
}

/// Every namespace's labels (pod-security.kubernetes.io/*, the priority label).
async fn namespace_labels(client: &Client) -> Result<BTreeMap<String, Value>, AuditError> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut labels = BTreeMap::new();
    each_page(&api, "namespaces", |items| {
        for ns in items {
            let name = ns.metadata.name.unwrap_or_default();
            let value = serde_json::to_value(ns.metadata.labels.unwrap_or_default());
            labels.insert(name, value.unwrap_or(Value::Null));
        }
        Ok(())
    })
    .await?;
    Ok(labels)
}

/// Lists every object of `api`, [`PAGE`] at a time, handing each page's items to `page` before
/// the next is fetched: at most one page is held.
async fn each_page<K>(
    api: &Api<K>,
    what: &str,
    mut page: impl FnMut(Vec<K>) -> std::io::Result<()>,
) -> Result<(), AuditError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let list = api.list(&params).await.map_err(|source| AuditError::List {
            what: what.to_owned(),
            source,
        })?;
        let token = list.metadata.continue_.clone().filter(|c| !c.is_empty());
        page(list.items)?;
        match token {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}
