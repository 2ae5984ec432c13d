# boinc-server-docker: add these lines to your project's
# images/makeproject/Dockerfile, after its FROM line. They install
# boinc-consent-server into the project tree the image builds, which
# makeproject-step2.sh copies over the project volume on every start.
#
# boinc-consent-server/ (beside the Dockerfile) holds boinc-rpc, boinc-ops
# and db_dump built to run on the image's Debian release (see
# deploy/docker/README.md). They stay outside the project tree; install
# copies them into bin/ under names upstream never uses.
COPY --chown=1000 boinc-consent-server/ /opt/boinc-consent-server/
# Runs as the image's BOINC_USER. No database while the image is built:
# boinc-rpc's daemon line gets --init-db instead, so the schema is brought
# up to date each time the daemon starts.
RUN /opt/boinc-consent-server/boinc-ops project install \
        --project-dir "$PROJECT_ROOT" \
        --from /opt/boinc-consent-server \
        --db-at-start
