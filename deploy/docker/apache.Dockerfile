# boinc-server-docker: add these lines to your project's
# images/apache/Dockerfile, after its FROM line. The apache container runs
# Apache and the project's daemons (bin/start); Apache needs mod_proxy,
# mod_proxy_http and mod_rewrite, and the include for the RPC paths, owned by root and
# outside the project volume (the project's user can write the volume).
#
# PROJECT must be your .env's PROJECT (the URL path /PROJECT/).
ARG PROJECT=boincserver
COPY boinc-consent-server/boinc-ops /usr/local/sbin/boinc-ops
RUN a2enmod proxy proxy_http rewrite \
    && /usr/local/sbin/boinc-ops project web-config --name "$PROJECT" \
        --web-conf-dir /etc/boinc-consent-server \
    && ln -s "/etc/boinc-consent-server/$PROJECT.boinc-rpc.httpd.conf" \
        /etc/apache2/conf-enabled/boinc-consent-server.conf
