#!/usr/bin/env bash
# Writes the lab administrator's credentials for the clients, both mode 0600:
#   clouds.yaml   cloud "glance-lab" (openstack --os-cloud glance-lab, openstacksdk)
#   admin-openrc  OS_* variables for `source admin-openrc` (python-glanceclient has no --os-cloud;
#                 the classic install guide's verification steps use it)
# Usage: scripts/lab-credentials.sh PASSWORD_FILE KEYSTONE_HOST [DIR]   (DIR: default .)
# Used by `make lab`; `make lab-destroy` removes both files.
set -euo pipefail

password_file=$1 host=$2 dir=${3:-.}
test -s "$password_file" || { echo "$password_file is missing: deploy first" >&2; exit 1; }
password=$(<"$password_file")
auth_url="http://$host:5000/v3"
umask 077

# YAML single quotes: a quote inside is doubled, nothing else is special.
yaml_password="'${password//\'/\'\'}'"
cat >"$dir/clouds.yaml.tmp" <<EOF
# Written by \`make lab\`: the lab's administrator (openstack --os-cloud glance-lab ...).
clouds:
  glance-lab:
    auth:
      auth_url: $auth_url
      username: admin
      password: $yaml_password
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
    image_api_version: 2
EOF

cat >"$dir/admin-openrc.tmp" <<EOF
# Written by \`make lab\`: the lab's administrator. \`source admin-openrc\`, then e.g. \`glance image-list\`.
export OS_AUTH_URL=$auth_url
export OS_USERNAME=admin
export OS_PASSWORD=$(printf '%q' "$password")
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
export OS_IMAGE_API_VERSION=2
EOF

chmod 0600 "$dir/clouds.yaml.tmp" "$dir/admin-openrc.tmp"
mv "$dir/clouds.yaml.tmp" "$dir/clouds.yaml"
mv "$dir/admin-openrc.tmp" "$dir/admin-openrc"
echo "wrote $dir/clouds.yaml (cloud glance-lab) and $dir/admin-openrc"
