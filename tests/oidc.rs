//! Agents sign in with their commune's identity provider: the desk by OpenID Connect
//! (authorization code with PKCE, state and nonce) and gRPC callers with its JWT access
//! tokens, against a local test issuer ([`contacthub_tests::oidc::TestIssuer`]): claims map
//! to communes, services and roles by the agents file's rules; an unmapped account, an
//! expired token, another audience, a tampered signature, `none`, a replayed or foreign
//! return are refused; a rotated key is fetched.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_core::pb::citizen_service_client::CitizenServiceClient;
use contacthub_tests::oidc::TestIssuer;
use contacthub_tests::*;
use serde_json::json;

/// Rules as a commune's administrator writes them: groups of its directory.
const RULES: &str = r#"[[oidc.rule]]
when = { groups = "givors-accueil" }
tenants = ["69091"]

[[oidc.rule]]
when = { groups = "givors-ccas" }
tenants = ["69091"]
services = ["ccas"]

[[oidc.rule]]
when = { groups = "givors-dpo" }
tenants = ["69091"]
role = "dpo"
"#;

async fn hub_with(issuer: &TestIssuer) -> TestHub {
    let secret = issuer.client_secret.clone();
    let toml = |desk: &str| {
        // A service account of the agents file beside the provider's agents.
        format!(
            "[[agent]]\nid = 'scanner-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\n{}",
            token_hash("jeton-du-scanner"),
            issuer.agents_toml(desk, RULES)
        )
    };
    TestHub::start_with_desk_access(&Backend::Embedded, |desk| {
        Access::from_toml(&toml(desk))
            .expect("the agents file")
            .with_oidc_secret(secret)
    })
    .await
}

/// A browser's trip: the desk sends it to the provider, which signs in whoever it was told
/// and sends it back. The desk's answer to the return, the return URL and the state cookie.
async fn round_trip(
    http: &reqwest::Client,
    hub: &TestHub,
    next: &str,
) -> (reqwest::Response, String, String) {
    let r = http
        .get(format!("{}/connexion/fournisseur?suite={next}", hub.web))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "the desk sends the browser to the provider"
    );
    let state_cookie = set_cookie(&r, "contacthub_oidc").expect("the state cookie");
    let to_provider = location(&r);
    assert!(
        to_provider.contains("code_challenge_method=S256"),
        "{to_provider}"
    );
    assert!(to_provider.contains("nonce="), "{to_provider}");
    let r = http.get(&to_provider).send().await.unwrap();
    assert_eq!(r.status(), 303, "the provider sends the browser back");
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{}/connexion/retour?", hub.web)),
        "{back}"
    );
    let r = http
        .get(&back)
        .header("cookie", format!("contacthub_oidc={state_cookie}"))
        .send()
        .await
        .unwrap();
    (r, back, state_cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sign_in_on_the_desk_with_the_identity_provider() {
    let issuer = TestIssuer::start().await;
    let hub = hub_with(&issuer).await;
    let http = no_redirects();

    let page = http
        .get(format!("{}/connexion", hub.web))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Se connecter avec le compte de test"),
        "{page}"
    );
    assert!(
        page.contains("Jeton d'agent"),
        "service accounts keep their tokens"
    );

    // An agent of the CCAS of Givors.
    issuer.sign_in_next_as(json!({
        "sub": "f3a1c2", "preferred_username": "m.dupont", "name": "Marie Dupont",
        "groups": ["givors-ccas"],
    }));
    let (r, back, state) = round_trip(&http, &hub, "/demandes").await;
    assert_eq!(r.status(), 200);
    let session = set_cookie(&r, "contacthub_session").expect("a session");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("url=/demandes"),
        "goes on where it was asked: {body}"
    );
    let get = |path: String| {
        let http = http.clone();
        let session = session.clone();
        async move {
            let r = http
                .get(path)
                .header("cookie", format!("contacthub_session={session}"))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (status, page) = get(format!("{}/demandes", hub.web)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Marie Dupont"),
        "the provider's name in the header"
    );
    let (status, _) = get(format!("{}/citoyens?commune={GRIGNY}", hub.web)).await;
    assert_eq!(status, 403, "Grigny is not hers");
    let (status, _) = get(format!("{}/journal", hub.web)).await;
    assert_ne!(status, 200, "the read trail is the DPO's");

    // The same return again (a replay), or from a browser without the state cookie: refused.
    let again = http
        .get(&back)
        .header("cookie", format!("contacthub_oidc={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    issuer.sign_in_next_as(
        json!({"sub": "x1", "preferred_username": "m.dupont", "groups": ["givors-ccas"]}),
    );
    let r = http
        .get(format!("{}/connexion/fournisseur", hub.web))
        .send()
        .await
        .unwrap();
    let r = http.get(location(&r)).send().await.unwrap();
    let foreign = http.get(location(&r)).send().await.unwrap();
    assert_eq!(
        foreign.status(),
        401,
        "a return without its browser's state cookie"
    );
    assert!(set_cookie(&foreign, "contacthub_session").is_none());

    // An account the provider knows but no rule lets in: a clear French page, no session.
    issuer.sign_in_next_as(
        json!({"sub": "z9", "preferred_username": "stagiaire", "groups": ["autre"]}),
    );
    let (r, _, _) = round_trip(&http, &hub, "/").await;
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "contacthub_session").is_none());
    let body = r.text().await.unwrap();
    assert!(
        body.contains("aucune règle ne lui donne accès à contacthub"),
        "{body}"
    );

    // An ID token of another sign-in (its nonce): refused.
    issuer.sign_in_next_as(
        json!({"sub": "f3a1c2", "preferred_username": "m.dupont", "groups": ["givors-ccas"]}),
    );
    issuer.wrong_nonce_next();
    let (r, _, _) = round_trip(&http, &hub, "/").await;
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "contacthub_session").is_none());
    assert!(r.text().await.unwrap().contains("nonce"));

    // The provider does not confirm (a cancelled sign-in): refused.
    let (r, _, _) = round_trip(&http, &hub, "/").await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("pas confirmé votre identité"));

    // Signing out ends the session here and at the provider.
    let (_, page) = get(format!("{}/demandes", hub.web)).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token")
        .to_string();
    let r = http
        .post(format!("{}/deconnexion", hub.web))
        .header("cookie", format!("contacthub_session={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let to_logout = body
        .split("url=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the provider's sign-out")
        .replace("&amp;", "&");
    assert!(
        to_logout.starts_with(&format!("{}/logout?id_token_hint=", issuer.url)),
        "{to_logout}"
    );
    assert_eq!(http.get(&to_logout).send().await.unwrap().status(), 200);
    assert_eq!(issuer.logouts(), 1);
    let (status, _) = get(format!("{}/demandes", hub.web)).await;
    assert_eq!(status, 303, "the session is over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proconnect_userinfo_as_a_signed_jwt_completes_the_claims() {
    let issuer = TestIssuer::start().await;
    issuer.userinfo_as_jwt();
    let secret = issuer.client_secret.clone();
    // ProConnect: claims from userinfo; the agent by e-mail, a rule per agent.
    let hub = TestHub::start_with_desk_access(&Backend::Embedded, |desk| {
        let toml = issuer
            .agents_toml(
                desk,
                "[[oidc.rule]]\nwhen = { email = \"accueil@mairie-givors.example\" }\nid = \"accueil-givors-7\"\ntenants = [\"69091\"]\n",
            )
            .replace("[oidc]\n", "[oidc]\nuserinfo = true\nid_claim = \"email\"\nname_claim = \"given_name\"\n");
        Access::from_toml(&toml).unwrap().with_oidc_secret(secret)
    })
    .await;
    issuer.sign_in_next_as(json!({
        "sub": "pc-7781", "email": "accueil@mairie-givors.example", "given_name": "Jeanne",
        "usual_name": "Martin", "siret": "21690091300018",
    }));
    let (r, _, _) = round_trip(&no_redirects(), &hub, "/").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // The rule's id, not the e-mail address, is the agent's.
    let seen = hub.hub.access().oidc().unwrap().seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, "accueil-givors-7");
    assert_eq!(
        seen[0].name.as_deref(),
        Some("Jeanne"),
        "from the signed userinfo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_takes_the_providers_access_tokens_and_refuses_bad_ones() {
    let issuer = TestIssuer::start().await;
    let hub = hub_with(&issuer).await;
    let search = |token: String, tenant: &'static str| {
        let channel = hub.channel.clone();
        async move {
            CitizenServiceClient::new(channel)
                .search_citizens(as_agent(
                    &token,
                    pb::SearchCitizensRequest {
                        tenant: tenant.into(),
                        query: "Dupont".into(),
                        ..Default::default()
                    },
                ))
                .await
        }
    };
    let agent =
        json!({"sub": "a-1", "preferred_username": "l.bernard", "groups": ["givors-accueil"]});
    let good = issuer.access_token("contacthub-api", 300, agent.clone());
    search(good.clone(), GIVORS)
        .await
        .expect("a valid token of the provider");
    let e = search(good.clone(), GRIGNY).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");

    let refused = |e: tonic::Status, why: &str| {
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
        assert!(e.message().contains(why), "{why}: {}", e.message());
    };
    refused(
        search(
            issuer.access_token("contacthub-api", -600, agent.clone()),
            GIVORS,
        )
        .await
        .unwrap_err(),
        "expiré",
    );
    refused(
        search(
            issuer.access_token("autre-application", 300, agent.clone()),
            GIVORS,
        )
        .await
        .unwrap_err(),
        "audience",
    );
    // An ID token (it carries its sign-in's nonce) is no access token; nor is a token not
    // valid yet.
    let mut id_token = agent.clone();
    id_token["nonce"] = json!("n-0001");
    refused(
        search(issuer.access_token("contacthub-api", 300, id_token), GIVORS)
            .await
            .unwrap_err(),
        "ID token",
    );
    let mut later = agent.clone();
    later["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    refused(
        search(issuer.access_token("contacthub-api", 7200, later), GIVORS)
            .await
            .unwrap_err(),
        "pas encore valable",
    );
    // Tampered: Grigny added to the claims, the signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["groups"] = json!(["givors-accueil", "givors-dpo"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string()
        ),
        parts[2]
    );
    refused(
        search(forged, GIVORS).await.unwrap_err(),
        "signature invalide",
    );
    // `none`: no signature at all.
    let none = format!(
        "{}.{}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"none","typ":"JWT"}"#
        ),
        parts[1]
    );
    refused(search(none, GIVORS).await.unwrap_err(), "algorithme");
    // An account no rule lets in.
    let e = search(
        issuer.access_token(
            "contacthub-api",
            300,
            json!({"sub": "b", "preferred_username": "b", "groups": []}),
        ),
        GIVORS,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");

    // The provider rotates its key: a token of the new key is taken (the hub fetches it), one
    // of the withdrawn key no longer.
    issuer.rotate("ec-2", false);
    search(
        issuer.access_token("contacthub-api", 300, agent.clone()),
        GIVORS,
    )
    .await
    .expect("a token of the new key");
    refused(
        search(good, GIVORS).await.unwrap_err(),
        "clé de signature inconnue",
    );

    // The service account of the agents file still works, and the CLI takes a provider's token.
    search("jeton-du-scanner".into(), GIVORS)
        .await
        .expect("a service account");
    let (ok, out) = hub.cli_as(
        &contacthub_bin!(),
        &issuer.access_token("contacthub-api", 300, agent),
        &["citizen", "search", "--tenant", GIVORS, "Dupont"],
    );
    assert!(ok, "{out}");
}

#[test]
fn the_documented_keycloak_configuration_maps_groups_as_it_says() {
    let doc = doc("operations.md");
    let start = doc
        .find("# agents.toml with a Keycloak realm")
        .expect("the example in docs/operations.md");
    let block = &doc[start..];
    let block = &block[..block.find("```").expect("its closing fence")];
    let access = Access::from_toml(block).expect("the documented agents file");
    let provider = access.oidc().expect("its [oidc] table");
    let agent = |claims: serde_json::Value| provider.agent(claims.as_object().unwrap());
    let ccas = agent(json!({"preferred_username": "c.roux", "groups": ["/givors/ccas"]})).unwrap();
    assert!(ccas.may_read(GIVORS) && !ccas.may_read(GRIGNY));
    assert!(ccas.in_service("ccas"));
    let elu = agent(json!({"preferred_username": "maire", "groups": ["/givors/elus"]})).unwrap();
    assert!(elu.is_elu());
    assert!(agent(json!({"preferred_username": "x", "groups": ["/grigny/accueil"]})).is_err());
    assert_eq!(provider.desk_label(), Some("le compte de la mairie"));
}
